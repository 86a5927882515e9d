// Package query holds mmdb's query language: attribute filters (parsed
// from text or built in Go), their evaluation to roaring bitmaps of
// internal IDs, and the fusion of ranked lists.
//
// Filter syntax:
//
//	year >= 2010 AND tags = 'dog'
//	NOT (kind IN ('cat', 'dog') OR score BETWEEN 0.2 AND 0.5)
//	EXISTS caption
//
// Operators: = != < <= > >= IN (...) BETWEEN x AND y EXISTS, combined with
// AND, OR, NOT and parentheses. Literals: 'strings' (” for a quote),
// numbers, TRUE and FALSE. Keywords are case-insensitive.
//
// Semantics: a comparison matches only items that have the attribute
// (a missing attribute is neither equal nor unequal to anything, as NULL in
// SQL); on a string list, = and IN match when any element does, and !=
// when none does. Numbers compare by value whether stored as integers or
// floats (exactly up to 2^53).
package query
