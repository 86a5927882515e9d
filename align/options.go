package align

import "github.com/mmdb-go/mmdb/modality"

// Options tune the learners. The zero value uses the defaults below.
type Options struct {
	// Metric is the target index's metric, used to score held-out pairs;
	// the zero value is Cosine.
	Metric modality.Metric
	// Lambdas are ridge's candidate penalties, relative to the mean
	// variance of the source features; default 0.01, 0.1, 1, 10, 100, 1000 (large
	// values matter with the identity prior, and for unit vectors, whose
	// per-feature variance is small).
	Lambdas []float64
	// Folds is the number of folds Auto cross-fits in, and ridge chooses
	// lambda by; default 5.
	Folds int
	// Components is the number of CCA components (default 16) and the PCA
	// dimension of Procrustes (default the smaller dimension).
	Components int
	// CCAReg is CCA's ridge term, relative to each covariance's mean
	// variance; default 0.5.
	CCAReg float64
	// SourceMetric is the source modality's metric, used by the soft
	// pivot to find a query's nearest pairs; the zero value is Cosine.
	SourceMetric modality.Metric
	// Reference is what searches do without a map, which a map must beat
	// to be kept: Pivot (the default: the spaces differ) or Baseline (they
	// are one space, searched directly).
	Reference Method
	// Force keeps the best method even when it does not beat Reference.
	Force bool
	// Seed makes splits and InfoNCE batches reproducible.
	Seed uint64
	// InfoNCE's training: epochs (default 200), batch size (default 256),
	// Adam's learning rate (default 3e-3) and the epochs without a better
	// validation loss before it stops (default 10). At 1e-3 the digits ->
	// fsdd fit ran 138 epochs, at 3e-3 66, to the same cross-fitted MRR
	// (0.962, 0.963); random-encoder coco text -> image was unchanged and
	// CLIP text -> image 0.03 lower (0.532, 0.501; ridge beats both):
	// BenchmarkInfoNCERate.
	Epochs, Batch int
	LR            float64
	Patience      int
	// Progress, if set, is called by FitAuto after each fit with the
	// number of fits done and the total (the methods, then the refit).
	Progress func(done, total int)

	// ridgeHint is the lambda and prior ridge chose on the same training
	// pairs (set by FitAuto's folds): InfoNCE starts from ridge at that
	// choice instead of choosing again.
	ridgeHint *ridgeChoice
}

func (o Options) withDefaults() Options {
	if o.Metric == 0 {
		o.Metric = modality.Cosine
	}
	if len(o.Lambdas) == 0 {
		o.Lambdas = []float64{0.01, 0.1, 1, 10, 100, 1000}
	}
	if o.Folds <= 1 {
		o.Folds = 5
	}
	if o.CCAReg <= 0 {
		o.CCAReg = 0.5
	}
	if o.Reference == "" {
		o.Reference = Pivot
	}
	if o.Epochs <= 0 {
		o.Epochs = 200
	}
	if o.Batch <= 1 {
		o.Batch = 256
	}
	if o.LR <= 0 {
		o.LR = 3e-3
	}
	if o.Patience <= 0 {
		o.Patience = 10
	}
	return o
}
