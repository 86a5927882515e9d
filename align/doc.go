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
//     held-out R@1; when the spaces have the same dimension it may shrink
//     towards the identity instead of zero (best when the spaces are
//     already close, as two heads of one CLIP model are).
//   - Procrustes: the best rotation (and scale), after PCA to a common
//     dimension when the dimensions differ.
//   - CCA: regularised canonical correlation analysis, the top components
//     weighted by their correlations.
//   - InfoNCE: a linear head trained with the symmetric contrastive loss,
//     started from the ridge solution and early-stopped on a validation
//     split.
//
// Auto fits each on a split by item, scores them on the held-out part, and
// keeps the best by R@10; its Report lists every method beside the
// baseline. The maths is done in float64 with gonum.
package align
