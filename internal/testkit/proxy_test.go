package testkit

import (
	"bufio"
	"net"
	"testing"
	"time"
)

// TestProxyCutAndRestore: forwarded before the cut; the open connection closed and a new one
// never answered while cut; forwarded again after the restore.
func TestProxyCutAndRestore(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { // echo lines
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						return
					}
					_, _ = c.Write([]byte(l))
				}
			}()
		}
	}()
	p := NewProxy(t, ln.Addr().String())
	echo := func(c net.Conn) error {
		_ = c.SetDeadline(time.Now().Add(300 * time.Millisecond))
		if _, err := c.Write([]byte("ping\n")); err != nil {
			return err
		}
		_, err := bufio.NewReader(c).ReadString('\n')
		return err
	}
	dial := func() net.Conn {
		c, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	open := dial()
	if err := echo(open); err != nil {
		t.Fatalf("before the cut: %v", err)
	}
	p.Cut()
	if err := echo(open); err == nil {
		t.Fatal("an open connection still forwarded after the cut")
	}
	if err := echo(dial()); err == nil {
		t.Fatal("a new connection answered while cut")
	}
	p.Restore()
	if err := echo(dial()); err != nil {
		t.Fatalf("after the restore: %v", err)
	}
}
