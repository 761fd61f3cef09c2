package gateway

import "sync"

// copyBufferSize is the size of the buffers the proxies copy bodies with,
// httputil.ReverseProxy's own default.
const copyBufferSize = 32 << 10

// bufferPool lends the proxies their copy buffers. Without one,
// httputil.ReverseProxy allocates 32 KiB for every answer it copies, which
// on the token path was the largest allocation of a request and a good
// part of the garbage collector's work under load.
type bufferPool struct{ pool sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{pool: sync.Pool{New: func() any {
		b := make([]byte, copyBufferSize)
		return &b
	}}}
}

// Get implements httputil.BufferPool.
func (p *bufferPool) Get() []byte { return *p.pool.Get().(*[]byte) }

// Put implements httputil.BufferPool.
func (p *bufferPool) Put(b []byte) {
	if cap(b) == copyBufferSize {
		b = b[:copyBufferSize]
		p.pool.Put(&b)
	}
}
