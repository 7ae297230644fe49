package gateway

import "sync"

// proxyBufferSize is the size of the buffers ReverseProxy copies bodies
// with, which it would otherwise allocate for every request.
const proxyBufferSize = 32 << 10

// bufferPool lends ReverseProxy its copy buffers. It pools array pointers,
// so that Put, converting the slice back, allocates nothing.
type bufferPool struct{ pool sync.Pool }

var proxyBuffers = &bufferPool{pool: sync.Pool{New: func() any { return new([proxyBufferSize]byte) }}}

func (p *bufferPool) Get() []byte { return p.pool.Get().(*[proxyBufferSize]byte)[:] }

func (p *bufferPool) Put(b []byte) {
	if len(b) == proxyBufferSize {
		p.pool.Put((*[proxyBufferSize]byte)(b))
	}
}
