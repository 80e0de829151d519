package webhook_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"github.com/stretchr/testify/require"

	"github.com/jobgate/jobgate/webhook"
)

// The signature is the Standard Webhooks one: the specification's example
// signs to its published value, and the reference library verifies what
// Sign produces.
func TestSignMatchesTheSpecification(t *testing.T) {
	t.Parallel()
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	sig, err := webhook.Sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	require.NoError(t, err)
	require.Equal(t, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", sig)

	fresh := webhook.NewSecret()
	ts := time.Now()
	body := []byte(`{"type":"job.succeeded","data":{}}`)
	sig, err = webhook.Sign(fresh, "msg_1", ts, body)
	require.NoError(t, err)
	wh, err := standardwebhooks.NewWebhook(fresh)
	require.NoError(t, err)
	h := http.Header{}
	h.Set(webhook.HeaderID, "msg_1")
	h.Set(webhook.HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	h.Set(webhook.HeaderSignature, sig)
	require.NoError(t, wh.Verify(body, h))
}

func TestParseSecrets(t *testing.T) {
	t.Parallel()
	good := webhook.NewSecret()
	got, err := webhook.ParseSecrets([]string{"acme:" + good, " ", "beta:" + good})
	require.NoError(t, err)
	require.Equal(t, map[string]string{"acme": good, "beta": good}, got)
	for name, entry := range map[string]string{
		"no tenant":      ":" + good,
		"no prefix":      "acme:MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
		"not base64":     "acme:whsec_!!!",
		"too short":      "acme:whsec_c2hvcnQ=",
		"no colon":       "acme",
		"twice a tenant": "acme:" + good,
	} {
		_, err := webhook.ParseSecrets([]string{entry, "acme:" + good})
		require.Error(t, err, name)
		require.NotContains(t, err.Error(), good, "%s: the secret stays out of errors", name)
	}
}

// The generated secret is kept with mode 0600 and the same on every start.
func TestLoadOrCreateSecret(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "data", "webhook-secret")
	first, err := webhook.LoadOrCreateSecret(path)
	require.NoError(t, err)
	info, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	again, err := webhook.LoadOrCreateSecret(path)
	require.NoError(t, err)
	require.Equal(t, first, again)
	_, err = standardwebhooks.NewWebhook(first)
	require.NoError(t, err)

	require.NoError(t, os.WriteFile(path, []byte("garbage"), 0o600))
	_, err = webhook.LoadOrCreateSecret(path)
	require.ErrorContains(t, err, "delete the file")
}
