package rules

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRedisPrefix starts every key a RedisStore writes. The braces are
// a Redis Cluster hash tag: every key lands in one slot, so that a push is
// one MULTI transaction on any topology.
const DefaultRedisPrefix = "{rulesgate}:"

// RedisStore is a Store in Redis, shared by every replica: each version is
// one JSON value written once, a sorted set lists them, one key names the
// active version, and a channel announces activations.
//
// Keys, after the prefix: seq (the last version number), set:N (version
// N), sets (sorted set of numbers), active (the active number); channel:
// active.
type RedisStore struct {
	client redis.UniversalClient
	prefix string
}

// NewRedisStore returns a store on client. go-redis' universal client
// covers a single server, Sentinel and Cluster alike.
func NewRedisStore(client redis.UniversalClient, prefix string) *RedisStore {
	if prefix == "" {
		prefix = DefaultRedisPrefix
	}
	return &RedisStore{client: client, prefix: prefix}
}

// NewRedisClient opens a client for a redis:// or rediss:// URL, in one of
// go-redis' three shapes:
//
//   - redis://host:6379/0: one server;
//   - redis://host1:26379?master_name=mymaster&addr=host2:26379: Sentinel,
//     the URL naming the sentinels and the master's name;
//   - redis://host1:6379?addr=host2:6379&addr=host3:6379: Cluster, the URL
//     naming several nodes.
//
// Unless the URL sets them, calls time out fast and retry once: a replica
// serves what it holds while Redis is away, and an action's api.cache
// call must not eat the rule timeout.
func NewRedisClient(rawURL string) (redis.UniversalClient, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// Not err itself: url.Error repeats the URL, password included.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, fmt.Errorf("redis url: %w", err)
	}
	q := u.Query()
	switch {
	case q.Has("master_name"):
		opts, err := redis.ParseFailoverURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("redis url: %w", err)
		}
		failFast(&opts.DialTimeout, &opts.ReadTimeout, &opts.WriteTimeout, &opts.MaxRetries)
		return redis.NewFailoverClient(opts), nil
	case q.Has("addr"):
		opts, err := redis.ParseClusterURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("redis url: %w", err)
		}
		failFast(&opts.DialTimeout, &opts.ReadTimeout, &opts.WriteTimeout, &opts.MaxRetries)
		return redis.NewClusterClient(opts), nil
	}
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	failFast(&opts.DialTimeout, &opts.ReadTimeout, &opts.WriteTimeout, &opts.MaxRetries)
	return redis.NewClient(opts), nil
}

// failFast sets the timeouts and retries a URL left unset.
func failFast(dial, read, write *time.Duration, retries *int) {
	for _, d := range []struct {
		p *time.Duration
		v time.Duration
	}{{dial, 2 * time.Second}, {read, time.Second}, {write, time.Second}} {
		if *d.p == 0 {
			*d.p = d.v
		}
	}
	if *retries == 0 {
		*retries = 1
	}
}

func (r *RedisStore) key(k string) string { return r.prefix + k }

// Push implements Store: one MULTI/EXEC writes the set, lists it and,
// when asked, activates and announces it.
func (r *RedisStore) Push(ctx context.Context, set *Set, activate bool) (int64, error) {
	version, err := r.client.Incr(ctx, r.key("seq")).Result()
	if err != nil {
		return 0, fmt.Errorf("push: %w", err)
	}
	s := *set
	s.Version, s.ID = version, newID()
	ref := Ref{Version: version, ID: s.ID}.String()
	if s.Created.IsZero() {
		s.Created = time.Now().UTC()
	}
	data, err := json.Marshal(&s)
	if err != nil {
		return 0, fmt.Errorf("push: %w", err)
	}
	_, err = r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, r.key("set:"+strconv.FormatInt(version, 10)), data, 0)
		p.ZAdd(ctx, r.key("sets"), redis.Z{Score: float64(version), Member: version})
		if activate {
			p.Set(ctx, r.key("active"), ref, 0)
			p.Publish(ctx, r.key("active"), ref)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("push: %w", err)
	}
	return version, nil
}

// Activate implements Store.
func (r *RedisStore) Activate(ctx context.Context, version int64) error {
	set, err := r.Get(ctx, version)
	if err != nil {
		return fmt.Errorf("activate: %w", err)
	}
	ref := Ref{Version: version, ID: set.ID}.String()
	_, err = r.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, r.key("active"), ref, 0)
		p.Publish(ctx, r.key("active"), ref)
		return nil
	})
	if err != nil {
		return fmt.Errorf("activate %d: %w", version, err)
	}
	return nil
}

// Get implements Store.
func (r *RedisStore) Get(ctx context.Context, version int64) (*Set, error) {
	data, err := r.client.Get(ctx, r.key("set:"+strconv.FormatInt(version, 10))).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("get %d: %w", version, ErrNoVersion)
	}
	if err != nil {
		return nil, fmt.Errorf("get %d: %w", version, err)
	}
	var s Set
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("get %d: %w", version, err)
	}
	return &s, nil
}

// ActiveVersion implements Store.
func (r *RedisStore) ActiveVersion(ctx context.Context) (Ref, error) {
	s, err := r.client.Get(ctx, r.key("active")).Result()
	if errors.Is(err, redis.Nil) {
		return Ref{}, ErrNoActive
	}
	if err != nil {
		return Ref{}, fmt.Errorf("active version: %w", err)
	}
	return parseRef(s)
}

// List implements Store.
func (r *RedisStore) List(ctx context.Context) ([]Summary, error) {
	members, err := r.client.ZRange(ctx, r.key("sets"), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	active, err := r.ActiveVersion(ctx)
	if err != nil && !errors.Is(err, ErrNoActive) {
		return nil, fmt.Errorf("list: %w", err)
	}
	out := make([]Summary, 0, len(members))
	for _, m := range members {
		v, err := strconv.ParseInt(m, 10, 64)
		if err != nil {
			continue
		}
		s, err := r.Get(ctx, v)
		if err != nil {
			return nil, fmt.Errorf("list: %w", err)
		}
		out = append(out, summarize(s, active.Version))
	}
	return out, nil
}

// Changes implements Store with a Redis subscription, which go-redis
// renews after a lost connection. Notices sent while it was down are lost:
// readers poll ActiveVersion as well.
func (r *RedisStore) Changes(ctx context.Context) <-chan int64 {
	ch := make(chan int64, 1)
	sub := r.client.Subscribe(ctx, r.key("active"))
	go func() {
		defer sub.Close()
		msgs := sub.Channel()
		for {
			select {
			case <-ctx.Done():
				return
			case m, ok := <-msgs:
				if !ok {
					return
				}
				ref, err := parseRef(m.Payload)
				if err != nil {
					continue
				}
				v := ref.Version
				select {
				case ch <- v:
				default:
				}
			}
		}
	}()
	return ch
}

// Ping reports whether Redis answers.
func (r *RedisStore) Ping(ctx context.Context) error { return r.client.Ping(ctx).Err() }
