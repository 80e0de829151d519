package webhook_test

import (
	"encoding/json"
	"io"
	"log"
	"net/http"
	"os"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// A receiver of jobgate's webhooks verifies each delivery with any Standard
// Webhooks library before it trusts the body. A retried delivery carries
// the same webhook-id: drop the ones already handled.
func Example_receiver() {
	wh, err := standardwebhooks.NewWebhook(os.Getenv("JOBGATE_WEBHOOK_SECRET")) // whsec_…
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /hooks/jobs", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "cannot read the body", http.StatusBadRequest)
			return
		}
		// Checks the signature and a 5-minute timestamp window.
		if err := wh.Verify(body, r.Header); err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var msg struct {
			Type string `json:"type"` // job.succeeded, job.failed, job.canceled, …
			Data struct {
				ID    string `json:"id"`
				State string `json:"state"`
			} `json:"data"`
		}
		if err := json.Unmarshal(body, &msg); err != nil {
			http.Error(w, "not a jobgate webhook", http.StatusBadRequest)
			return
		}
		log.Printf("%s: job %s is %s (delivery %s)", msg.Type, msg.Data.ID, msg.Data.State, r.Header.Get("webhook-id"))
		w.WriteHeader(http.StatusNoContent) // any 2xx ends the delivery
	})
	log.Fatal(http.ListenAndServe(":9000", mux))
}
