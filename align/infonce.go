package align

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/mmdb-go/mmdb/modality"
	"gonum.org/v1/gonum/mat"
)

// InitialTemperature is InfoNCE's starting temperature, CLIP's.
const InitialTemperature = 0.07

// Temperature bounds: CLIP clamps its logit scale at 100.
const minTemp, maxTemp = 0.01, 1.0

// head is the trainable linear head: z = normalise(W x + b), and the log
// temperature t.
type head struct {
	w *mat.Dense // d2 x d1
	b []float64
	t float64
}

// grads has the shape of a head.
type grads struct {
	w *mat.Dense
	b []float64
	t float64
}

// infoNCELoss is the symmetric InfoNCE loss of a batch: each projected
// source should pick out its own target among the batch's targets (rows),
// and each target its own source (columns). Targets y are unit vectors.
// Pairs of one class are not each other's negatives when classes are
// given. It returns the loss and, when g is not nil, its gradient.
func (h *head) loss(x, y *mat.Dense, classes []int, g *grads) float64 {
	bsz, _ := x.Dims()
	_, d2 := y.Dims()
	var u mat.Dense
	mul(&u, x, h.w.T())
	norms := make([]float64, bsz)
	z := mat.NewDense(bsz, d2, nil)
	for i := range bsz {
		row := u.RawRowView(i)
		var s float64
		for j := range row {
			row[j] += h.b[j]
			s += row[j] * row[j]
		}
		norms[i] = math.Sqrt(s) + 1e-12
		zr := z.RawRowView(i)
		for j, v := range row {
			zr[j] = v / norms[i]
		}
	}
	tau := math.Exp(h.t)
	var logits mat.Dense
	mul(&logits, z, y.T())
	logits.Scale(1/tau, &logits)
	// Softmax over rows and over columns, masked, from one exponential
	// per logit: z and y are unit vectors, so every logit lies within
	// 1/tau of zero, and exp(v - 1/tau) >= exp(-2/minTemp) = e^-200 is
	// far from underflow. Raw slices: this is the inner loop of training.
	lg := logits.RawMatrix().Data
	e := make([]float64, bsz*bsz)
	for k, v := range lg {
		i, j := k/bsz, k%bsz
		if i == j || classes == nil || classes[i] != classes[j] {
			e[k] = math.Exp(v - 1/tau)
		}
	}
	rows := make([]float64, bsz)
	cols := make([]float64, bsz)
	for i := range bsz {
		for j, v := range e[i*bsz : (i+1)*bsz] {
			rows[i] += v
			cols[j] += v
		}
	}
	var loss float64
	for i := range bsz {
		loss -= math.Log(e[i*bsz+i]/rows[i] + 1e-300)
		loss -= math.Log(e[i*bsz+i]/cols[i] + 1e-300)
	}
	loss /= 2 * float64(bsz)
	if g == nil {
		return loss
	}

	// dLoss/dlogits, then back through the temperature and normalisation.
	gl := mat.NewDense(bsz, bsz, nil)
	gd := gl.RawMatrix().Data
	var gt float64
	for k := range gd {
		v := e[k]/rows[k/bsz] + e[k]/cols[k%bsz]
		if k/bsz == k%bsz {
			v -= 2
		}
		v /= 2 * float64(bsz)
		gd[k] = v
		gt -= v * lg[k]
	}
	var gz mat.Dense
	mul(&gz, gl, y)
	gz.Scale(1/tau, &gz)
	gu := mat.NewDense(bsz, d2, nil)
	for i := range bsz {
		zr, gr := z.RawRowView(i), gz.RawRowView(i)
		var dot float64
		for j := range zr {
			dot += zr[j] * gr[j]
		}
		ur := gu.RawRowView(i)
		for j := range zr {
			ur[j] = (gr[j] - dot*zr[j]) / norms[i]
		}
	}
	mul(g.w, gu.T(), x)
	for j := range g.b {
		g.b[j] = 0
	}
	for i := range bsz {
		for j, v := range gu.RawRowView(i) {
			g.b[j] += v
		}
	}
	g.t = gt
	return loss
}

// adam is the Adam optimiser's state for a head.
type adam struct {
	m, v   grads
	step   int
	lr     float64
	b1, b2 float64
}

func newAdam(d1, d2 int, lr float64) *adam {
	mk := func() grads { return grads{w: mat.NewDense(d2, d1, nil), b: make([]float64, d2)} }
	return &adam{m: mk(), v: mk(), lr: lr, b1: 0.9, b2: 0.999}
}

func (a *adam) update(h *head, g *grads) {
	a.step++
	c1 := 1 - math.Pow(a.b1, float64(a.step))
	c2 := 1 - math.Pow(a.b2, float64(a.step))
	upd := func(p, m, v *float64, gr float64) {
		*m = a.b1**m + (1-a.b1)*gr
		*v = a.b2**v + (1-a.b2)*gr*gr
		*p -= a.lr * (*m / c1) / (math.Sqrt(*v/c2) + 1e-8)
	}
	pw, mw, vw, gw := h.w.RawMatrix().Data, a.m.w.RawMatrix().Data, a.v.w.RawMatrix().Data, g.w.RawMatrix().Data
	for i := range pw {
		upd(&pw[i], &mw[i], &vw[i], gw[i])
	}
	for i := range h.b {
		upd(&h.b[i], &a.m.b[i], &a.v.b[i], g.b[i])
	}
	upd(&h.t, &a.m.t, &a.v.t, g.t)
	h.t = min(max(h.t, math.Log(minTemp)), math.Log(maxTemp))
}

// fitInfoNCE trains a linear head with the symmetric InfoNCE loss, started
// from the ridge solution (which it should only improve on), with Adam,
// keeping the parameters of the epoch with the lowest validation loss and
// stopping after Patience epochs without improvement.
func fitInfoNCE(ctx context.Context, p Pairs, o Options) (*Projection, error) {
	if o.Metric == modality.L2 {
		// The loss sees only directions (outputs are normalised): it
		// learns no scale, which L2 needs.
		return nil, fmt.Errorf("%w: InfoNCE learns directions only; for an L2 target use ridge, Procrustes or CCA", ErrBadInput)
	}
	if _, _, err := p.check(o.Folds * 2); err != nil {
		return nil, err
	}
	trainIdx, valIdx := p.split(0.15, o.Seed+1)
	train, val := p.subset(trainIdx), p.subset(valIdx)
	choice, init, err := ridgeStart(ctx, train, o)
	if err != nil {
		return nil, err
	}
	xt, yt := dense(train.X), unitDense(train.Y)
	// With fewer pairs than dimensions, train in the coordinates of the
	// pairs' span (trainingSpan): a 768 x 768 head learnt from 49 pairs
	// becomes at most 49 x 49.
	qx, qy := trainingSpan(p, choice.identity)
	xt, yt = inBasis(xt, qx), inBasis(yt, qy)
	xv, yv := inBasis(dense(val.X), qx), inBasis(unitDense(val.Y), qy)
	w0, b0 := restrict(qy, init.W, qx), restrictVec(qy, init.Bias)
	_, d1 := xt.Dims()
	_, d2 := yt.Dims()
	h := &head{w: mat.DenseCopyOf(w0), b: append([]float64(nil), b0...), t: math.Log(InitialTemperature)}
	valLoss := func() float64 { return h.meanLoss(xv, yv, val.Classes, o.Batch) }
	best := valLoss()
	bestH := head{w: mat.DenseCopyOf(h.w), b: append([]float64(nil), h.b...), t: h.t}
	bestEpoch, epochs := 0, 0
	opt := newAdam(d1, d2, o.LR)
	g := &grads{w: mat.NewDense(d2, d1, nil), b: make([]float64, d2)}
	rng := rand.New(rand.NewPCG(o.Seed, 0x696e666f))
	n := train.Len()
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	bx := mat.NewDense(min(o.Batch, n), d1, nil)
	by := mat.NewDense(min(o.Batch, n), d2, nil)
	for epoch := 1; epoch <= o.Epochs; epoch++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		epochs = epoch
		rng.Shuffle(n, func(i, j int) { order[i], order[j] = order[j], order[i] })
		for s := 0; s+1 < n; s += o.Batch {
			e := min(n, s+o.Batch)
			if e-s < 2 {
				break
			}
			xb := bx.Slice(0, e-s, 0, d1).(*mat.Dense)
			yb := by.Slice(0, e-s, 0, d2).(*mat.Dense)
			var cl []int
			if train.Classes != nil {
				cl = make([]int, e-s)
			}
			for k, i := range order[s:e] {
				xb.SetRow(k, xt.RawRowView(i))
				yb.SetRow(k, yt.RawRowView(i))
				if cl != nil {
					cl[k] = train.Classes[i]
				}
			}
			h.loss(xb, yb, cl, g)
			opt.update(h, g)
		}
		if l := valLoss(); l < best {
			best, bestEpoch = l, epoch
			bestH = head{w: mat.DenseCopyOf(h.w), b: append([]float64(nil), h.b...), t: h.t}
		} else if epoch-bestEpoch >= o.Patience {
			break
		}
	}
	params := fmt.Sprintf("epochs=%d best=%d tau=%.3f init=(%s)", epochs, bestEpoch, math.Exp(bestH.t), init.Params)
	w := bestH.w
	if qx != nil || qy != nil {
		params += fmt.Sprintf(" span=%dx%d", d2, d1)
		w = liftHead(qx, qy, w, choice.identity)
	}
	return &Projection{Method: InfoNCE, Params: params, W: w, Bias: liftVec(qy, bestH.b), Normalize: o.Metric == modality.Cosine}, nil
}

// ridgeStart is InfoNCE's starting point: the ridge map with the lambda
// and prior ridge chose on the same training pairs (o.ridgeHint, or chosen
// here).
func ridgeStart(ctx context.Context, train Pairs, o Options) (*ridgeChoice, *Projection, error) {
	choice := o.ridgeHint
	if choice == nil {
		ch, err := chooseRidge(ctx, train, o)
		if err != nil {
			return nil, nil, fmt.Errorf("infonce: initial ridge: %w", err)
		}
		choice = &ch
	}
	init, err := fitRidge(train, choice.lambda, choice.identity, o.Metric)
	if err != nil {
		return nil, nil, fmt.Errorf("infonce: initial ridge: %w", err)
	}
	return choice, init, nil
}

// unitDense copies rows into a matrix with each row scaled to unit length
// (zero rows stay zero).
func unitDense(rows [][]float32) *mat.Dense {
	m := dense(rows)
	for i := range len(rows) {
		r := m.RawRowView(i)
		var s float64
		for _, v := range r {
			s += v * v
		}
		if s > 0 {
			s = 1 / math.Sqrt(s)
		}
		for j := range r {
			r[j] *= s
		}
	}
	return m
}

// meanLoss is the loss over x and y in batches of batch rows (a last
// batch of one row is left out: it has no negatives), averaged.
func (h *head) meanLoss(x, y *mat.Dense, classes []int, batch int) float64 {
	n, d1 := x.Dims()
	_, d2 := y.Dims()
	var sum float64
	var batches int
	for s := 0; s < n; s += batch {
		e := min(n, s+batch)
		if e-s < 2 {
			break
		}
		var cl []int
		if classes != nil {
			cl = classes[s:e]
		}
		sum += h.loss(x.Slice(s, e, 0, d1).(*mat.Dense), y.Slice(s, e, 0, d2).(*mat.Dense), cl, nil)
		batches++
	}
	return sum / float64(max(batches, 1))
}

// trainingSpan returns the bases InfoNCE trains its head in, nil for a
// side with at least as many pairs as dimensions. The loss's gradient with
// respect to W is a sum of y x' over the pairs, so training only moves W
// inside the pairs' spans (source rows, target rows). The ridge map it
// starts from lies there too, or, when ridge shrank towards the identity,
// is the identity plus a part that does; then both sides share one basis
// of both spans, and the identity stays as it is outside it (liftHead).
// Adam scales each coordinate separately, so training in these
// coordinates is not step for step the same as in the full ones; it is
// the same model, fitted to the same loss.
func trainingSpan(p Pairs, identity bool) (qx, qy *mat.Dense) {
	x, y := dense(p.X), dense(p.Y)
	if !identity {
		return rowBasis(x), rowBasis(y)
	}
	var both mat.Dense
	both.Stack(x, y)
	q := rowBasis(&both)
	return q, q
}

// liftHead carries a head trained in trainingSpan's bases back into the
// full spaces: Qy W Qx', plus the identity outside the span when the head
// started from the identity prior.
func liftHead(qx, qy, w *mat.Dense, identity bool) *mat.Dense {
	if !identity {
		return lift(qy, w, qx)
	}
	r, _ := w.Dims()
	delta := mat.DenseCopyOf(w)
	for i := range r {
		delta.Set(i, i, delta.At(i, i)-1)
	}
	full := lift(qy, delta, qx)
	d, _ := full.Dims()
	for i := range d {
		full.Set(i, i, full.At(i, i)+1)
	}
	return full
}
