// Command go_time parses each line of stdin with the Go kubernetes-pod-discovery's time layout,
// exactly as a Go client of that service would, and prints the Unix time in seconds, or
// "error: <message>" when the line does not parse. Used by tests/dropin_test.ts.
package main

import (
	"bufio"
	"fmt"
	"os"
	"time"
)

// layout is the Go service's lastUpdated format.
const layout = "2006-01-02T15:04:05-0700"

func main() {
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		t, err := time.Parse(layout, in.Text())
		if err != nil {
			fmt.Printf("error: %v\n", err)
			continue
		}
		fmt.Println(t.Unix())
	}
}
