package main

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Colours of the series: jobgate, the raw SDK baseline, and a third.
var (
	jobgateColor = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	rawColor     = color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}
	thirdColor   = color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}
	palette      = []color.Color{jobgateColor, rawColor, thirdColor}
)

// series is one set of bars of a grouped bar chart.
type series struct {
	name   string
	values []float64
}

// groupedBars is a bar chart with one group per label and one bar per
// series in each group.
func groupedBars(title, ylabel string, labels []string, ss ...series) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = ylabel
	p.Y.Min = 0
	p.Legend.Top = true
	p.Legend.Left = true
	width := vg.Points(26)
	for i, s := range ss {
		b, err := plotter.NewBarChart(plotter.Values(s.values), width)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", title, err)
		}
		b.Offset = vg.Length(float64(i)-float64(len(ss)-1)/2) * width
		b.Color = palette[i%len(palette)]
		b.LineStyle.Width = 0
		p.Add(b)
		p.Legend.Add(s.name, b)
		// The value above each bar.
		xyl := plotter.XYLabels{XYs: make(plotter.XYs, len(s.values)), Labels: make([]string, len(s.values))}
		for j, v := range s.values {
			xyl.XYs[j] = plotter.XY{X: float64(j), Y: v}
			xyl.Labels[j] = short(v)
		}
		l, err := plotter.NewLabels(xyl)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", title, err)
		}
		for j := range l.TextStyle {
			l.TextStyle[j].XAlign = draw.XCenter
			l.TextStyle[j].YAlign = draw.YBottom
			l.TextStyle[j].Font.Size = vg.Points(8)
		}
		l.Offset = vg.Point{X: b.Offset, Y: vg.Points(2)}
		p.Add(l)
	}
	p.NominalX(labels...)
	// Leave room above the tallest bar for the legend.
	var top float64
	for _, s := range ss {
		for _, v := range s.values {
			top = max(top, v)
		}
	}
	p.Y.Max = top * 1.35
	return p, nil
}

// errNothingToDraw is writeChart's answer when no phase with a chart ran.
var errNothingToDraw = errors.New("nothing to draw")

// writeChart draws the run's figures into a PNG at path.
func writeChart(r *results, path string) error {
	var panels []*plot.Plot
	add := func(p *plot.Plot, err error) error {
		if err != nil {
			return err
		}
		panels = append(panels, p)
		return nil
	}
	if len(r.Accept) > 0 {
		var labels []string
		var jg, raw, eng []float64
		for _, a := range r.Accept {
			labels = append(labels, fmt.Sprintf("c=%d", a.Conc))
			jg = append(jg, a.Jobgate.Throughput())
			raw = append(raw, a.Raw.Throughput())
			eng = append(eng, a.Engine.Throughput())
		}
		if err := add(groupedBars("1. Accept path", "starts per second", labels,
			series{"jobgate POST /v1/jobs", jg}, series{"raw SDK StartWorkflow", raw}, series{"jobgate engine, no HTTP", eng})); err != nil {
			return err
		}
	}
	if len(r.Status) > 0 {
		var labels []string
		var jg, raw []float64
		for _, s := range r.Status {
			labels = append(labels, s.What)
			jg = append(jg, s.Jobgate.Throughput())
			raw = append(raw, s.Raw.Throughput())
		}
		if err := add(groupedBars(fmt.Sprintf("2. Status reads (c=%d)", r.StatusConc), "reads per second", labels,
			series{"jobgate GET", jg}, series{"raw SDK Describe", raw})); err != nil {
			return err
		}
	}
	if e := r.E2E; e != nil {
		if err := add(groupedBars("3. End to end", "completed per second", []string{fmt.Sprintf("c=%d", e.Conc)},
			series{"jobgate sleep 0", []float64{e.Jobgate.Rate()}}, series{"raw workflow + activity", []float64{e.Raw.Rate()}})); err != nil {
			return err
		}
	}
	if len(r.Growth) > 0 {
		labels := []string{"accept", "GET running", "GET finished"}
		var ss []series
		for _, g := range r.Growth {
			ss = append(ss, series{fmt.Sprintf("%d jobs", g.Accumulated), []float64{
				msf(g.Accept.P(99)), msf(g.Running.P(99)), msf(g.Finished.P(99)),
			}})
		}
		title := fmt.Sprintf("4. Growth: p99 (c=%d)", r.StatusConc)
		if r.PeakRSS > 0 {
			title += "; 5. peak RSS " + mib(r.PeakRSS)
		}
		if err := add(groupedBars(title, "milliseconds", labels, ss...)); err != nil {
			return err
		}
	}
	if len(r.Stores) > 0 {
		labels := []string{"raw starts", "accepts", "jobgate e2e", "raw e2e"}
		var ss []series
		for _, s := range r.Stores {
			ss = append(ss, series{s.Store + " SQLite", []float64{
				s.RawStarts.Throughput(), s.Accept.Throughput(), s.JobgateE2E.Rate(), s.RawE2E.Rate(),
			}})
		}
		if err := add(groupedBars("6. Embedded store", "per second", labels, ss...)); err != nil {
			return err
		}
	}
	if len(r.Chaos) > 0 {
		var labels []string
		var acc, done, bad []float64
		for i, c := range r.Chaos {
			labels = append(labels, []string{"kill all-in-one", "kill worker"}[min(i, 1)])
			acc = append(acc, float64(c.Accepted))
			done = append(done, float64(c.Completed))
			bad = append(bad, float64(c.Lost+c.Duplicated))
		}
		if err := add(groupedBars("Chaos: SIGKILL under load", "jobs", labels,
			series{"accepted (202)", acc}, series{"completed once", done}, series{"lost or duplicated", bad})); err != nil {
			return err
		}
	}
	if len(panels) == 0 {
		return errNothingToDraw
	}

	const cols = 3
	rows := (len(panels) + cols - 1) / cols
	grid := make([][]*plot.Plot, rows)
	for i := range grid {
		grid[i] = make([]*plot.Plot, cols)
	}
	for i, p := range panels {
		grid[i/cols][i%cols] = p
	}
	img := vgimg.NewWith(vgimg.UseWH(vg.Points(1200), vg.Points(float64(380*rows))), vgimg.UseDPI(96), vgimg.UseBackgroundColor(color.White))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Points(16), PadY: vg.Points(16), PadTop: vg.Points(8), PadBottom: vg.Points(8), PadLeft: vg.Points(8), PadRight: vg.Points(8)}
	canvases := plot.Align(grid, tiles, dc)
	for j := range grid {
		for i, p := range grid[j] {
			if p != nil {
				p.Draw(canvases[j][i])
			}
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// msf is d in milliseconds.
func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// short formats a bar's value: whole numbers, one decimal for fractions
// below 10.
func short(v float64) string {
	if v < 10 && v != math.Trunc(v) {
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}
