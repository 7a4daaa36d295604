// Command control-plane runs a real Kubernetes control plane on 127.0.0.1 for the sidecar's
// tests and for trying it on a laptop: embedded etcd, kube-apiserver and kube-controller-manager
// (EndpointSlice, EndpointSlice mirroring and ServiceAccount controllers), each in its own
// process, because kube-apiserver and kube-controller-manager each install a process-wide
// signal handler that may be set up only once, and restarting the API server alone must keep
// etcd's data.
//
//	control-plane up [--kubeconfig PATH] [-- COMMAND ARGS...]
//
// starts everything, prints one JSON line with "ready":true once /readyz answers 200 and the
// controllers run, serves fault handles on a loopback control address, and stops on
// SIGTERM/SIGINT (or, with a command, when the command exits, passing on its exit code).
// The subcommands etcd, apiserver and controller-manager are what `up` starts; they are not
// meant to be run by hand.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: control-plane up|etcd|apiserver|controller-manager [flags]")
		os.Exit(2)
	}
	args := os.Args[2:]
	var err error
	switch os.Args[1] {
	case "up":
		os.Exit(runUp(args))
	case "etcd":
		err = runEtcd(args)
	case "apiserver":
		os.Exit(runAPIServer(args))
	case "controller-manager":
		os.Exit(runControllerManager(args))
	default:
		err = fmt.Errorf("unknown subcommand %q: want up, etcd, apiserver or controller-manager", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "control-plane:", err)
		os.Exit(1)
	}
}
