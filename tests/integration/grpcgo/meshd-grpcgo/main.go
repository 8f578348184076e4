// tests/integration/grpcgo/meshd-grpcgo/main.go: a grpc-go program that uses etcd's own naming
// tools the way a grpc-go user of the etcd registry would, to test meshd against them.
//
//	meshd-grpcgo call -etcd URL -target meshd/services/meshd.test.Echo -want 2
//	    dials etcd:///TARGET with etcd's resolver (go.etcd.io/etcd/clientv3/naming/resolver) and
//	    the round_robin balancer, calls /meshd.test.Echo/Unary until replies came from -want
//	    distinct servers, then makes -rounds x -want more calls; prints one JSON line
//	    {"distinct":[...],"counts":{server_id:n},"errors":n,"last_error":"..."}. Exit 0 when
//	    -want servers answered before -timeout, else 1.
//	meshd-grpcgo register -etcd URL -target meshd/services/meshd.test.Echo -addr HOST:PORT
//	    registers HOST:PORT with etcd's endpoints manager (AddEndpoint, key TARGET/HOST:PORT,
//	    value {"Op":0,"Addr":"HOST:PORT","Metadata":null}) under a lease kept alive, prints
//	    "registered KEY", and on SIGTERM or SIGINT deletes the endpoint (DeleteEndpoint) and
//	    exits 0.
//
// Messages are raw bytes (grpc.ForceCodec with a pass-through codec), so no Go stubs are
// generated: the request is an empty EchoRequest and the reply's server_id (EchoReply field 2)
// is read with protowire. Built offline in GOPATH mode against Debian's packages
// (golang-google-grpc-dev, golang-etcd-server-dev); see test_grpcgo.py.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"

	"go.etcd.io/etcd/clientv3"
	"go.etcd.io/etcd/clientv3/naming/endpoints"
	"go.etcd.io/etcd/clientv3/naming/resolver"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"
)

// rawCodec hands message bytes through unchanged. Its name is "proto", so calls carry
// content-type application/grpc+proto as generated stubs would.
type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("rawCodec: cannot marshal %T", v)
	}
	return *b, nil
}

func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	b, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("rawCodec: cannot unmarshal into %T", v)
	}
	*b = append((*b)[:0], data...)
	return nil
}

func (rawCodec) Name() string { return "proto" }

// serverID reads field 2 (string server_id) of an EchoReply.
func serverID(msg []byte) (string, error) {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return "", protowire.ParseError(n)
		}
		msg = msg[n:]
		if num == 2 && typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(msg)
			if m < 0 {
				return "", protowire.ParseError(m)
			}
			return string(v), nil
		}
		m := protowire.ConsumeFieldValue(num, typ, msg)
		if m < 0 {
			return "", protowire.ParseError(m)
		}
		msg = msg[m:]
	}
	return "", fmt.Errorf("no server_id in the reply")
}

func etcdClient(url string) *clientv3.Client {
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{url}, DialTimeout: 5 * time.Second})
	if err != nil {
		fmt.Fprintf(os.Stderr, "meshd-grpcgo: etcd %s: %v\n", url, err)
		os.Exit(2)
	}
	return c
}

type result struct {
	Distinct  []string       `json:"distinct"`
	Counts    map[string]int `json:"counts"`
	Errors    int            `json:"errors"`
	LastError string         `json:"last_error,omitempty"`
}

func call(args []string) int {
	fs := flag.NewFlagSet("call", flag.ExitOnError)
	etcdURL := fs.String("etcd", "", "etcd endpoint URL")
	target := fs.String("target", "", "key prefix of the service (dialed as etcd:///TARGET)")
	method := fs.String("method", "/meshd.test.Echo/Unary", "method to call")
	want := fs.Int("want", 1, "distinct servers to reach")
	rounds := fs.Int("rounds", 3, "calls per server after all were reached")
	timeout := fs.Duration("timeout", 30*time.Second, "deadline to reach -want servers")
	fs.Parse(args)

	cli := etcdClient(*etcdURL)
	defer cli.Close()
	builder, err := resolver.NewBuilder(cli)
	if err != nil {
		fmt.Fprintf(os.Stderr, "meshd-grpcgo: resolver: %v\n", err)
		return 2
	}
	conn, err := grpc.Dial("etcd:///"+*target, grpc.WithResolvers(builder), grpc.WithInsecure(),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`))
	if err != nil {
		fmt.Fprintf(os.Stderr, "meshd-grpcgo: dial: %v\n", err)
		return 2
	}
	defer conn.Close()

	res := result{Counts: map[string]int{}}
	one := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, reply := []byte{}, []byte{}
		err := conn.Invoke(ctx, *method, &req, &reply, grpc.ForceCodec(rawCodec{}),
			grpc.WaitForReady(true))
		if err == nil {
			var id string
			if id, err = serverID(reply); err == nil {
				res.Counts[id]++
				return
			}
		}
		res.Errors++
		res.LastError = err.Error()
	}
	deadline := time.Now().Add(*timeout)
	for len(res.Counts) < *want && time.Now().Before(deadline) {
		one()
	}
	reached := len(res.Counts) >= *want
	if reached {
		for i := 0; i < *rounds**want; i++ {
			one()
		}
	}
	for id := range res.Counts {
		res.Distinct = append(res.Distinct, id)
	}
	sort.Strings(res.Distinct)
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
	if !reached {
		return 1
	}
	return 0
}

func register(args []string) int {
	fs := flag.NewFlagSet("register", flag.ExitOnError)
	etcdURL := fs.String("etcd", "", "etcd endpoint URL")
	target := fs.String("target", "", "key prefix of the service")
	addr := fs.String("addr", "", "HOST:PORT to register")
	ttl := fs.Int64("ttl", 10, "lease TTL in seconds")
	fs.Parse(args)

	cli := etcdClient(*etcdURL)
	defer cli.Close()
	ctx := context.Background()
	em, err := endpoints.NewManager(cli, *target)
	if err != nil {
		fmt.Fprintf(os.Stderr, "meshd-grpcgo: endpoints manager: %v\n", err)
		return 2
	}
	lease, err := cli.Grant(ctx, *ttl)
	if err != nil {
		fmt.Fprintf(os.Stderr, "meshd-grpcgo: lease grant: %v\n", err)
		return 2
	}
	key := *target + "/" + *addr
	if err := em.AddEndpoint(ctx, key, endpoints.Endpoint{Addr: *addr},
		clientv3.WithLease(lease.ID)); err != nil {
		fmt.Fprintf(os.Stderr, "meshd-grpcgo: AddEndpoint: %v\n", err)
		return 2
	}
	ka, err := cli.KeepAlive(ctx, lease.ID)
	if err != nil {
		fmt.Fprintf(os.Stderr, "meshd-grpcgo: keepalive: %v\n", err)
		return 2
	}
	go func() {
		for range ka { // drain the keepalive answers
		}
	}()
	fmt.Printf("registered %s\n", key)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	<-sigs
	if err := em.DeleteEndpoint(ctx, key); err != nil {
		fmt.Fprintf(os.Stderr, "meshd-grpcgo: DeleteEndpoint: %v\n", err)
		return 1
	}
	cli.Revoke(ctx, lease.ID)
	fmt.Printf("deleted %s\n", key)
	return 0
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: meshd-grpcgo call|register [flags]")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "call":
		os.Exit(call(os.Args[2:]))
	case "register":
		os.Exit(register(os.Args[2:]))
	default:
		fmt.Fprintf(os.Stderr, "meshd-grpcgo: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
}
