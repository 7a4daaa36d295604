package main

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/component-base/version"
)

// Timeouts for the components to come up; a cold start on a 2-core machine takes a few seconds.
const (
	readyTimeout = 120 * time.Second
	stopTimeout  = 15 * time.Second
	// apiserverStopTimeout: see stopProc.
	apiserverStopTimeout = 3 * time.Second
)

// testUsers are static-token users (no groups) that tests bind Roles to; "admin" is in
// system:masters.
var testUsers = []string{"alice", "bob"}

// cluster is one running control plane: its files, ports and child processes.
type cluster struct {
	dir, exe          string
	etcdURL, server   string
	adminToken        string
	etcdArgs, apiArgs []string
	// featureGates is the API server's --feature-gates value ("" for its defaults), e.g.
	// "WatchList=false" to test clients against a server without streaming lists.
	featureGates string
	kcmArgs      []string
	client       *http.Client
	mu           sync.Mutex
	procs        map[string]*proc
	proxies      map[string]*faultProxy
	nextProxy    int
	probes       int
	stopping     bool
}

func runUp(args []string) int {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "also write the admin kubeconfig here (removed on exit)")
	stdinEOF := fs.Bool("stop-on-stdin-eof", false, "stop when standard input closes (so a parent that dies takes the control plane with it)")
	gates := fs.String("api-feature-gates", os.Getenv("KPD_API_FEATURE_GATES"), "the API server's --feature-gates, e.g. WatchList=false (default $KPD_API_FEATURE_GATES)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	c, err := newCluster()
	if err != nil {
		fmt.Fprintln(os.Stderr, "control-plane:", err)
		return 1
	}
	c.featureGates = *gates
	defer c.shutdown()
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	if err := c.start(*kubeconfig); err != nil {
		fmt.Fprintln(os.Stderr, "control-plane:", err)
		c.dumpLogs()
		return 1
	}
	if *kubeconfig != "" {
		defer os.Remove(*kubeconfig)
	}
	control, err := c.serveControl()
	if err != nil {
		fmt.Fprintln(os.Stderr, "control-plane:", err)
		return 1
	}
	info := map[string]any{
		"ready": true, "version": kubeVersion(), "server": c.server, "dir": c.dir,
		"kubeconfig": filepath.Join(c.dir, "admin.kubeconfig"), "control": control,
		"caFile": filepath.Join(c.dir, "ca.crt"), "adminTokenFile": filepath.Join(c.dir, "admin.token"),
		"etcd": c.etcdURL,
	}
	b, _ := json.Marshal(info)
	if err := os.WriteFile(filepath.Join(c.dir, "cluster.json"), b, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "control-plane:", err)
		return 1
	}
	fmt.Println(string(b))
	done := make(chan int, 1)
	// If whoever started us dies (deno task killed, a terminal closed), stop too: nothing of
	// the control plane may outlive the command that asked for it.
	go func() {
		parent := os.Getppid()
		for range time.Tick(500 * time.Millisecond) {
			if os.Getppid() != parent {
				sig <- syscall.SIGTERM
				return
			}
		}
	}()
	if *stdinEOF {
		go func() { io.Copy(io.Discard, os.Stdin); done <- 0 }()
	}
	if rest := fs.Args(); len(rest) > 0 {
		cmd := exec.Command(rest[0], rest[1:]...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		cmd.Env = append(os.Environ(), "KPD_TEST_CLUSTER="+filepath.Join(c.dir, "cluster.json"))
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "control-plane:", err)
			return 1
		}
		go func() {
			err := cmd.Wait()
			var ee *exec.ExitError
			switch {
			case errors.As(err, &ee):
				done <- ee.ExitCode()
			case err != nil:
				done <- 1
			default:
				done <- 0
			}
		}()
		go func() {
			for s := range sig {
				cmd.Process.Signal(s)
			}
		}()
		return <-done
	}
	select {
	case <-sig:
		return 0
	case code := <-done:
		return code
	}
}

func kubeVersion() string { return version.Get().GitVersion }

// proc is one running component; done closes when it exits.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func newCluster() (*cluster, error) {
	dir, err := os.MkdirTemp("", "kpd-control-plane-")
	if err != nil {
		return nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	c := &cluster{dir: dir, exe: exe, procs: map[string]*proc{}, proxies: map[string]*faultProxy{}}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return nil, err
	}
	p, err := newPKI(dir)
	if err != nil {
		return nil, err
	}
	hosts := []string{"127.0.0.1", "::1", "localhost", "kubernetes", "kubernetes.default",
		"kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}
	if err := p.issue(dir, "apiserver", "kube-apiserver", nil, hosts); err != nil {
		return nil, err
	}
	// A client certificate for a user with no groups, for tests of client-certificate kubeconfigs.
	if err := p.issue(dir, "cert-user", "cert-user", nil, nil); err != nil {
		return nil, err
	}
	if err := writeServiceAccountKeys(dir); err != nil {
		return nil, err
	}
	if err := c.writeTokens(); err != nil {
		return nil, err
	}
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	c.etcdURL = fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	c.server = fmt.Sprintf("https://127.0.0.1:%d", ports[2])
	c.etcdArgs = []string{"--data-dir", filepath.Join(dir, "etcd"), "--client-url", c.etcdURL,
		"--peer-url", fmt.Sprintf("http://127.0.0.1:%d", ports[1])}
	issuer := "https://kubernetes.default.svc.cluster.local"
	c.apiArgs = []string{
		"--etcd-servers=" + c.etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(ports[2]),
		"--cert-dir=" + filepath.Join(dir, "apiserver-certs"),
		"--tls-cert-file=" + filepath.Join(dir, "apiserver.crt"),
		"--tls-private-key-file=" + filepath.Join(dir, "apiserver.key"),
		"--client-ca-file=" + filepath.Join(dir, "ca.crt"),
		"--token-auth-file=" + filepath.Join(dir, "tokens.csv"),
		"--anonymous-auth=false",
		"--authorization-mode=RBAC",
		"--service-account-issuer=" + issuer,
		"--api-audiences=" + issuer,
		"--service-account-key-file=" + filepath.Join(dir, "sa.pub"),
		"--service-account-signing-key-file=" + filepath.Join(dir, "sa.key"),
		// Dual-stack, so tests can create IPv4, IPv6 and dual-stack Services.
		"--service-cluster-ip-range=10.96.0.0/16,fd00:10:96::/112",
		// No kubelet or load balancer here: the API server must not manage its own Endpoints.
		"--endpoint-reconciler-type=none",
		"--profiling=false",
	}
	pods := filepath.Join(dir, "admin.kubeconfig")
	c.kcmArgs = []string{
		"--kubeconfig=" + pods,
		"--controllers=endpointslice,endpointslicemirroring,serviceaccount",
		"--leader-elect=false", "--secure-port=0",
		"--use-service-account-credentials=false",
		// Tests create hundreds of Pods at once; the default client rate limit (20 qps) would make
		// the EndpointSlice controller, not the sidecar, the slow part of every test.
		"--kube-api-qps=500", "--kube-api-burst=1000",
	}
	return c, nil
}

func (c *cluster) writeTokens() error {
	var lines []string
	tok := func() string { b := make([]byte, 24); rand.Read(b); return hex.EncodeToString(b) }
	c.adminToken = tok()
	lines = append(lines, fmt.Sprintf("%s,admin,admin,\"system:masters\"", c.adminToken))
	if err := os.WriteFile(filepath.Join(c.dir, "admin.token"), []byte(c.adminToken), 0o600); err != nil {
		return err
	}
	for _, u := range testUsers {
		t := tok()
		lines = append(lines, fmt.Sprintf("%s,%s,%s", t, u, u))
		if err := os.WriteFile(filepath.Join(c.dir, u+".token"), []byte(t), 0o600); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(c.dir, "tokens.csv"), []byte(strings.Join(lines, "\n")+"\n"), 0o600)
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func (c *cluster) start(kubeconfigCopy string) error {
	if err := c.startProc("etcd", c.etcdArgs); err != nil {
		return err
	}
	if err := c.waitFor("etcd", func() bool {
		resp, err := http.Get(c.etcdURL + "/health")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return resp.StatusCode == 200
	}); err != nil {
		return err
	}
	if err := c.startAPIServer(); err != nil {
		return err
	}
	kc := c.kubeconfig()
	if err := os.WriteFile(filepath.Join(c.dir, "admin.kubeconfig"), kc, 0o600); err != nil {
		return err
	}
	if kubeconfigCopy != "" {
		if err := os.MkdirAll(filepath.Dir(kubeconfigCopy), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(kubeconfigCopy, kc, 0o600); err != nil {
			return err
		}
	}
	if err := c.startProc("controller-manager", c.kcmArgs); err != nil {
		return err
	}
	// The ServiceAccount controller creating "default" in namespace default shows that the
	// controller manager is up and syncing.
	return c.waitFor("controller-manager", func() bool {
		return c.get("/api/v1/namespaces/default/serviceaccounts/default") == 200
	})
}

func (c *cluster) startAPIServer() error {
	c.mu.Lock()
	_, running := c.procs["apiserver"]
	c.mu.Unlock()
	if running {
		return fmt.Errorf("apiserver is already running: stop it first")
	}
	args := c.apiArgs
	c.mu.Lock()
	if c.featureGates != "" {
		args = append(append([]string{}, args...), "--feature-gates="+c.featureGates)
	}
	c.mu.Unlock()
	if err := c.startProc("apiserver", args); err != nil {
		return err
	}
	return c.waitFor("apiserver", func() bool { return c.get("/readyz") == 200 })
}

// restartAPIServer (re)starts the API server, then the controller manager: its informers were
// seen to stay silent after the API server went away (no error logged, no namespace getting its
// ServiceAccount for minutes), and the sidecar's tests need the controllers, not that client-go
// behaviour. A new namespace getting its "default" ServiceAccount shows they work again.
func (c *cluster) restartAPIServer(stopFirst bool) error {
	if stopFirst {
		c.stopProc("apiserver")
	}
	c.stopProc("controller-manager")
	if err := c.startAPIServer(); err != nil {
		return err
	}
	if err := c.startProc("controller-manager", c.kcmArgs); err != nil {
		return err
	}
	c.mu.Lock()
	c.probes++
	ns := fmt.Sprintf("kpd-probe-%d", c.probes)
	c.mu.Unlock()
	if code := c.do("POST", "/api/v1/namespaces", `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"`+ns+`"}}`); code != 201 {
		return fmt.Errorf("creating probe namespace %s: status %d", ns, code)
	}
	return c.waitFor("controller-manager", func() bool {
		return c.get("/api/v1/namespaces/"+ns+"/serviceaccounts/default") == 200
	})
}

func (c *cluster) httpClient() *http.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client == nil {
		pool := x509.NewCertPool()
		ca, _ := os.ReadFile(filepath.Join(c.dir, "ca.crt"))
		pool.AppendCertsFromPEM(ca)
		c.client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool}}}
	}
	return c.client
}

func (c *cluster) get(path string) int { return c.do("GET", path, "") }

// do sends an admin request and returns its status, 0 when it could not be sent.
func (c *cluster) do(method, path, body string) int {
	req, _ := http.NewRequest(method, c.server+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.adminToken)
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func (c *cluster) waitFor(name string, ok func() bool) error {
	deadline := time.Now().Add(readyTimeout)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		p := c.procs[name]
		c.mu.Unlock()
		if p != nil {
			select {
			case <-p.done:
				return fmt.Errorf("%s exited: %s", name, p.cmd.ProcessState)
			default:
			}
		}
		if ok() {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready within %s", name, readyTimeout)
}

func (c *cluster) startProc(name string, args []string) error {
	logf, err := os.OpenFile(filepath.Join(c.dir, "logs", name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(c.exe, append([]string{name}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group: a terminal's Ctrl-C reaches only this process, which stops the
	// components in order. Pdeathsig: if this process is killed, they die with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	c.mu.Lock()
	c.procs[name] = p
	c.mu.Unlock()
	go func() {
		cmd.Wait()
		logf.Close()
		close(p.done)
		c.mu.Lock()
		unexpected := c.procs[name] == p && !c.stopping
		c.mu.Unlock()
		if unexpected {
			fmt.Fprintf(os.Stderr, "control-plane: %s exited unexpectedly: %s (log: %s)\n", name, cmd.ProcessState, logf.Name())
		}
	}()
	return nil
}

func (c *cluster) stopProc(name string) {
	c.mu.Lock()
	p := c.procs[name]
	delete(c.procs, name)
	c.mu.Unlock()
	if p == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	timeout := stopTimeout
	if name == "apiserver" {
		// kube-apiserver does not finish a graceful stop while watches are open (the controller
		// manager always has some); etcd keeps the data, so a short grace is enough.
		timeout = apiserverStopTimeout
	}
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (c *cluster) shutdown() {
	c.mu.Lock()
	c.stopping = true
	for _, p := range c.proxies {
		p.close()
	}
	c.mu.Unlock()
	c.stopProc("controller-manager")
	c.stopProc("apiserver")
	c.stopProc("etcd")
	os.RemoveAll(c.dir)
}

func (c *cluster) dumpLogs() {
	for _, name := range []string{"etcd", "apiserver", "controller-manager"} {
		b, err := os.ReadFile(filepath.Join(c.dir, "logs", name+".log"))
		if err != nil {
			continue
		}
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		fmt.Fprintf(os.Stderr, "--- %s log (tail) ---\n%s\n", name, b)
	}
}

func (c *cluster) kubeconfig() []byte {
	ca, _ := os.ReadFile(filepath.Join(c.dir, "ca.crt"))
	return []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: kpd-test
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: admin
  user:
    token: %s
contexts:
- name: kpd-test
  context:
    cluster: kpd-test
    user: admin
    namespace: default
current-context: kpd-test
`, c.server, base64.StdEncoding.EncodeToString(ca), c.adminToken))
}

// compactEtcd compacts etcd at its current revision through etcd's JSON gateway, so a watch
// from any older resourceVersion can no longer be served from storage.
func (c *cluster) compactEtcd() (int64, error) {
	resp, err := http.Post(c.etcdURL+"/v3/kv/range", "application/json", strings.NewReader(`{"key":"AA=="}`))
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != 200 {
		resp.Body.Close()
		return 0, fmt.Errorf("etcd range: %s", resp.Status)
	}
	var r struct {
		Header struct {
			Revision string `json:"revision"`
		} `json:"header"`
	}
	err = json.NewDecoder(resp.Body).Decode(&r)
	resp.Body.Close()
	if err != nil {
		return 0, err
	}
	rev, err := strconv.ParseInt(r.Header.Revision, 10, 64)
	if err != nil {
		return 0, err
	}
	body := fmt.Sprintf(`{"revision":"%d","physical":true}`, rev)
	resp, err = http.Post(c.etcdURL+"/v3/kv/compaction", "application/json", strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return 0, fmt.Errorf("compaction: %s: %s", resp.Status, b)
	}
	return rev, nil
}

// parseURLs turns one URL flag into the list form etcd's config wants.
func parseURLs(s string) ([]url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	return []url.URL{*u}, nil
}
