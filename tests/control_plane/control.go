package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// serveControl serves the fault handles on a loopback port and returns its base URL:
//
//	POST   /apiserver/stop | /apiserver/start | /apiserver/restart
//	       (start and restart take ?featureGates=WatchList=false; an empty value restores defaults)
//	POST   /etcd/compact                  -> {"revision": N}
//	POST   /proxies                       -> {"id", "address", ...}
//	GET    /proxies/{id}                  -> {"mode", "latencyMs", "accepted", "open", ...}
//	POST   /proxies/{id}/mode?mode=pass|blackhole&latencyMs=N
//	POST   /proxies/{id}/cut              -> {"cut": N}
//	DELETE /proxies/{id}
func (c *cluster) serveControl() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /apiserver/{action}", func(w http.ResponseWriter, r *http.Request) {
		if q := r.URL.Query(); q.Has("featureGates") {
			c.mu.Lock()
			c.featureGates = q.Get("featureGates")
			c.mu.Unlock()
		}
		switch r.PathValue("action") {
		case "stop":
			c.stopProc("apiserver")
		case "start":
			if err := c.restartAPIServer(false); err != nil {
				httpError(w, err)
				return
			}
		case "restart":
			if err := c.restartAPIServer(true); err != nil {
				httpError(w, err)
				return
			}
		default:
			http.NotFound(w, r)
			return
		}
		writeJSON(w, map[string]any{"ok": true})
	})
	mux.HandleFunc("POST /etcd/compact", func(w http.ResponseWriter, r *http.Request) {
		rev, err := c.compactEtcd()
		if err != nil {
			httpError(w, err)
			return
		}
		writeJSON(w, map[string]any{"revision": rev})
	})
	mux.HandleFunc("POST /proxies", func(w http.ResponseWriter, r *http.Request) {
		p, err := newFaultProxy(strings.TrimPrefix(c.server, "https://"))
		if err != nil {
			httpError(w, err)
			return
		}
		c.mu.Lock()
		c.nextProxy++
		id := strconv.Itoa(c.nextProxy)
		c.proxies[id] = p
		c.mu.Unlock()
		s := p.stats()
		s["id"] = id
		writeJSON(w, s)
	})
	withProxy := func(h func(http.ResponseWriter, *http.Request, *faultProxy)) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			c.mu.Lock()
			p := c.proxies[r.PathValue("id")]
			c.mu.Unlock()
			if p == nil {
				http.NotFound(w, r)
				return
			}
			h(w, r, p)
		}
	}
	mux.HandleFunc("GET /proxies/{id}", withProxy(func(w http.ResponseWriter, r *http.Request, p *faultProxy) {
		writeJSON(w, p.stats())
	}))
	mux.HandleFunc("POST /proxies/{id}/mode", withProxy(func(w http.ResponseWriter, r *http.Request, p *faultProxy) {
		mode := r.URL.Query().Get("mode")
		if mode != "pass" && mode != "blackhole" {
			http.Error(w, "mode must be pass or blackhole", http.StatusBadRequest)
			return
		}
		ms, _ := strconv.Atoi(r.URL.Query().Get("latencyMs"))
		p.setMode(mode, time.Duration(ms)*time.Millisecond)
		writeJSON(w, p.stats())
	}))
	mux.HandleFunc("POST /proxies/{id}/cut", withProxy(func(w http.ResponseWriter, r *http.Request, p *faultProxy) {
		writeJSON(w, map[string]any{"cut": p.cut()})
	}))
	mux.HandleFunc("DELETE /proxies/{id}", withProxy(func(w http.ResponseWriter, r *http.Request, p *faultProxy) {
		p.close()
		c.mu.Lock()
		delete(c.proxies, r.PathValue("id"))
		c.mu.Unlock()
		writeJSON(w, map[string]any{"ok": true})
	}))
	go http.Serve(ln, mux)
	return fmt.Sprintf("http://%s", ln.Addr()), nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func httpError(w http.ResponseWriter, err error) {
	http.Error(w, err.Error(), http.StatusInternalServerError)
}
