// tests/integration/entry/probe/main.go: a gRPC health probe written with grpc-go, as
// Kubernetes' `grpc:` probe and grpc_health_probe do it: one grpc.health.v1 Check with a
// timeout; exit 0 when the answer is SERVING, 1 otherwise (NOT_SERVING, an error status, no
// connection). The integration tests run it against `meshd proxy` so that at least one health
// client is not meshd's own code.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9090", "host:port of the gRPC server")
	service := flag.String("service", "", "service name (empty: the server as a whole)")
	timeout := flag.Duration("timeout", time.Second, "deadline of the connect and the Check")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	conn, err := grpc.DialContext(ctx, *addr, grpc.WithInsecure(), grpc.WithBlock())
	if err != nil {
		fmt.Fprintf(os.Stderr, "probe: cannot connect to %s: %v\n", *addr, err)
		os.Exit(1)
	}
	defer conn.Close()
	r, err := healthpb.NewHealthClient(conn).Check(ctx,
		&healthpb.HealthCheckRequest{Service: *service})
	if err != nil {
		fmt.Fprintf(os.Stderr, "probe: Check(%q): %v\n", *service, err)
		os.Exit(1)
	}
	fmt.Printf("%s\n", r.GetStatus())
	if r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		os.Exit(1)
	}
}
