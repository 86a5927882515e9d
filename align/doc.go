// Package align learns linear maps between embedding spaces from paired
// vectors: items that carry both a source and a target embedding.
//
// Vectors from different encoders are not comparable, even at the same
// dimension. Given pairs (x_i, y_i) of the same items in two spaces, a
// learner fits a Projection y ≈ W x + b, so that a source vector, once
// projected, can search the target space's index directly.
//
// Four learners are provided:
//
//   - Ridge: least squares with an L2 penalty, lambda chosen by K-fold on
//     held-out MRR; when the spaces have the same dimension it may shrink
//     towards the identity instead of zero (best when the spaces are
//     already close, as two heads of one CLIP model are).
//   - Procrustes: the best rotation (and scale), after PCA to a common
//     dimension when the dimensions differ, and to the pairs' span when
//     there are fewer pairs than dimensions.
//   - CCA: regularised canonical correlation analysis, the top components
//     weighted by their correlations.
//   - InfoNCE: a linear head trained with the symmetric contrastive loss,
//     started from the ridge solution and early-stopped on a validation
//     split.
//
// Auto cross-fits each in 5 folds by item, so that every pair is scored by
// a map that never saw it, against every pair's target; its Report lists
// every method beside the two ways to search without a map (Baseline, the
// vectors as they are, and Pivot, the soft pivot through the nearest
// pairs) and the chance level. It keeps the best MRR only when it beats
// the reference beyond the fold-to-fold spread (ErrNoGain otherwise). The
// maths is done in float64 with gonum.
package align
