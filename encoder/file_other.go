//go:build !unix

package encoder

// openNonBlock is 0 where opening a FIFO cannot block (or there are none).
const openNonBlock = 0
