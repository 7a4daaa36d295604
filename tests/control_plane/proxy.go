package main

import (
	"net"
	"sync"
	"time"
)

// faultProxy is a TCP proxy between a client and the API server that can cut its connections
// (RST), black-hole them (forward nothing, send no RST) and add latency. It forwards bytes, not
// HTTP, so TLS stays end to end and the client sees the fault as it would on a real network.
type faultProxy struct {
	ln       net.Listener
	target   string
	mu       sync.Mutex
	mode     string // "pass" or "blackhole"
	latency  time.Duration
	conns    map[*proxyConn]struct{}
	accepted int
}

// proxyConn is one client connection and its upstream. Once black-holed it stays dead, as a
// connection through a vanished NAT entry does: only new connections recover.
type proxyConn struct {
	client, upstream net.Conn
	dead             bool          // guarded by faultProxy.mu
	kill             chan struct{} // closed by cut: reset the client even if it is dead
	killOnce         sync.Once
}

func newFaultProxy(target string) (*faultProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &faultProxy{ln: ln, target: target, mode: "pass", conns: map[*proxyConn]struct{}{}}
	go p.serve()
	return p, nil
}

func (p *faultProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.handle(c)
	}
}

func (p *faultProxy) handle(client net.Conn) {
	upstream, err := net.Dial("tcp", p.target)
	if err != nil {
		reset(client)
		return
	}
	pc := &proxyConn{client: client, upstream: upstream, kill: make(chan struct{})}
	p.mu.Lock()
	p.accepted++
	p.conns[pc] = struct{}{}
	if p.mode == "blackhole" {
		pc.dead = true
	}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go p.pump(pc, client, upstream, done)
	go p.pump(pc, upstream, client, done)
	<-done
	p.mu.Lock()
	dead := pc.dead
	p.mu.Unlock()
	upstream.Close()
	if dead {
		// A black hole stays silent: the client side sees neither FIN nor RST when the upstream
		// ends, only when the test cuts the connection or closes the proxy.
		<-pc.kill
	}
	client.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, pc)
	p.mu.Unlock()
}

// pump copies src to dst chunk by chunk, applying the proxy's current mode to each chunk.
func (p *faultProxy) pump(pc *proxyConn, src, dst net.Conn, done chan<- struct{}) {
	defer func() { done <- struct{}{} }()
	buf := make([]byte, 32*1024)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			latency := p.latency
			if p.mode == "blackhole" {
				pc.dead = true
			}
			dead := pc.dead
			p.mu.Unlock()
			if !dead {
				if latency > 0 {
					time.Sleep(latency)
				}
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// setMode sets "pass" or "blackhole" and the latency added to every forwarded chunk.
func (p *faultProxy) setMode(mode string, latency time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode, p.latency = mode, latency
	if mode == "blackhole" {
		for pc := range p.conns {
			pc.dead = true
		}
	}
}

// cut resets every open connection, both ways, and returns how many there were.
func (p *faultProxy) cut() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.conns)
	for pc := range p.conns {
		reset(pc.client)
		reset(pc.upstream)
		pc.killOnce.Do(func() { close(pc.kill) })
		delete(p.conns, pc)
	}
	return n
}

func (p *faultProxy) stats() map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	return map[string]any{"address": p.ln.Addr().String(), "mode": p.mode,
		"latencyMs": p.latency.Milliseconds(), "accepted": p.accepted, "open": len(p.conns)}
}

func (p *faultProxy) close() {
	p.ln.Close()
	p.cut()
}

// reset closes c with SO_LINGER 0, which sends a TCP RST instead of a FIN.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}
