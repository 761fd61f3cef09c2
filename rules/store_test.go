package rules

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rulesgate/rulesgate/rules/redistest"
)

// stores runs a test on every Store: in memory, and in a real Redis.
func stores(t *testing.T, test func(t *testing.T, st Store)) {
	t.Run("memory", func(t *testing.T) { test(t, NewMemoryStore()) })
	t.Run("redis", func(t *testing.T) {
		srv := redistest.Start(t)
		client, err := NewRedisClient(srv.URL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { client.Close() })
		test(t, NewRedisStore(client, ""))
	})
}

func testSet(note string, srcs ...string) *Set {
	s := &Set{Note: note, Files: map[string][]File{}}
	for i, src := range srcs {
		s.Files["rules"] = append(s.Files["rules"], NewFile(string(rune('a'+i))+".lua", []byte(src)))
	}
	return s
}

// TestStore_Versions: pushes are numbered from 1, immutable, listed oldest
// first with their hashes, and one of them is active; activating an older
// one is a rollback.
func TestStore_Versions(t *testing.T) {
	stores(t, func(t *testing.T, st Store) {
		ctx := context.Background()
		if _, err := st.ActiveVersion(ctx); !errors.Is(err, ErrNoActive) {
			t.Fatalf("empty store: got %v, want ErrNoActive", err)
		}
		v1, err := st.Push(ctx, testSet("first", "return 1"), true)
		if err != nil || v1 != 1 {
			t.Fatalf("push: got %d, %v, want 1", v1, err)
		}
		v2, err := st.Push(ctx, testSet("second", "return 2"), false)
		if err != nil || v2 != 2 {
			t.Fatalf("push: got %d, %v, want 2", v2, err)
		}
		if a, _ := st.ActiveVersion(ctx); a.Version != 1 {
			t.Errorf("a push without activation moved the active version to %d", a.Version)
		}
		if err := st.Activate(ctx, 2); err != nil {
			t.Fatal(err)
		}
		if err := st.Activate(ctx, 1); err != nil { // rollback
			t.Fatal(err)
		}
		got, err := Active(ctx, st)
		if err != nil || got.Version != 1 || got.Note != "first" || got.Files["rules"][0].Source != "return 1" {
			t.Fatalf("active: got %+v, %v", got, err)
		}
		if got.Created.IsZero() || time.Since(got.Created) > time.Minute {
			t.Errorf("created: %v", got.Created)
		}
		if err := st.Activate(ctx, 9); !errors.Is(err, ErrNoVersion) {
			t.Errorf("activate a missing version: got %v, want ErrNoVersion", err)
		}
		if _, err := st.Get(ctx, 9); !errors.Is(err, ErrNoVersion) {
			t.Errorf("get a missing version: got %v, want ErrNoVersion", err)
		}

		list, err := st.List(ctx)
		if err != nil || len(list) != 2 {
			t.Fatalf("list: got %v, %v", list, err)
		}
		if list[0].Version != 1 || !list[0].Active || list[1].Active || list[1].Note != "second" {
			t.Errorf("list: %+v", list)
		}
		if h := list[1].Hashes["rules"]; len(h) != 1 || h[0] != "a.lua: "+NewFile("a.lua", []byte("return 2")).Hash {
			t.Errorf("list hashes: %v", h)
		}
	})
}

// TestStore_Changes: an activation is announced to every watcher.
func TestStore_Changes(t *testing.T) {
	stores(t, func(t *testing.T, st Store) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		a, b := st.Changes(ctx), st.Changes(ctx)
		time.Sleep(100 * time.Millisecond) // the subscriptions are in place
		if _, err := st.Push(ctx, testSet("n", "return 1"), true); err != nil {
			t.Fatal(err)
		}
		for _, ch := range []<-chan int64{a, b} {
			select {
			case v := <-ch:
				if v != 1 {
					t.Errorf("notice: got %d, want 1", v)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no notice of the activation")
			}
		}
	})
}

// TestRedisStore_Down: with Redis down, every call fails with an error,
// promptly, and works again once Redis is back.
func TestRedisStore_Down(t *testing.T) {
	srv := redistest.Start(t)
	client, err := NewRedisClient(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	st := NewRedisStore(client, "")
	ctx := context.Background()
	if _, err := st.Push(ctx, testSet("n", "return 1"), true); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	start := time.Now()
	if _, err := st.ActiveVersion(ctx); err == nil || errors.Is(err, ErrNoActive) {
		t.Errorf("Redis down: got %v, want a connection error", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Redis down: the call took %v", d)
	}
	srv.Restart()
	if _, err := st.Push(ctx, testSet("again", "return 1"), true); err != nil {
		t.Errorf("after Redis came back: %v", err)
	}
}

// TestNewRedisClient: one URL flag picks the shape of the deployment, as
// go-redis' universal client knows them.
func TestNewRedisClient(t *testing.T) {
	tests := []struct {
		url  string
		want string
	}{
		{"redis://localhost:6379/0", "*redis.Client"},
		{"rediss://user:pass@redis.example:6380", "*redis.Client"},
		{"redis://s1:26379?master_name=mymaster&addr=s2:26379", "Redis<FailoverClient db:0>"},
		{"redis://n1:6379?addr=n2:6379&addr=n3:6379", "*redis.ClusterClient"},
	}
	for _, tt := range tests {
		c, err := NewRedisClient(tt.url)
		if err != nil {
			t.Errorf("%s: %v", tt.url, err)
			continue
		}
		got := fmt.Sprintf("%T", c)
		if s, ok := c.(fmt.Stringer); ok && strings.Contains(s.String(), "Failover") {
			got = s.String()
		}
		if got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.url, got, tt.want)
		}
		c.Close()
	}
	for _, bad := range []string{"http://localhost:6379", "redis://localhost:6379?no_such_option=1"} {
		if _, err := NewRedisClient(bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
