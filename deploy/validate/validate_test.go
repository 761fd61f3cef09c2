// Package validate checks the deployment files offline: the Compose file
// at the repository root, loaded as Docker Compose loads it, and the
// Kubernetes kustomization under deploy/kubernetes, rendered as kubectl
// renders it and decoded strictly into the Kubernetes API types. Neither
// needs a Docker engine nor a cluster.
//
// It is a module of its own so that Compose, kustomize and the Kubernetes
// API stay out of the gateway's go.mod: run it with
//
//	cd deploy/validate && go test ./...
package validate

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// Paths from this package's directory.
const (
	repoRoot      = "../.."
	composeFile   = "../../docker-compose.yml"
	dockerfile    = "../Dockerfile"
	kustomizeRoot = "../kubernetes"
	examplesDir   = "../../examples"
)

// The gateway's ports, as the image and the manifests expose them.
const (
	clientPort = 8080
	adminPort  = 9090
)

// loadCompose loads the Compose file as `docker compose config` would,
// without the caller's environment or a .env file changing it.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{composeFile},
		cli.WithWorkingDirectory(repoRoot),
		cli.WithEnv(nil),
		cli.WithInterpolation(true),
		cli.WithResolvedPaths(false),
	)
	if err != nil {
		t.Fatalf("compose options: %v", err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("load %s: %v", composeFile, err)
	}
	return p
}

func TestCompose_Services(t *testing.T) {
	p := loadCompose(t)
	for _, name := range []string{"gateway", "redis", "issuer"} {
		if _, err := p.GetService(name); err != nil {
			t.Errorf("service %s: %v", name, err)
		}
	}
}

func TestCompose_GatewayPorts(t *testing.T) {
	gw := composeService(t, loadCompose(t), "gateway")
	published := map[uint32]string{}
	for _, port := range gw.Ports {
		published[port.Target] = port.Published
	}
	for _, want := range []uint32{clientPort, adminPort} {
		if got, ok := published[want]; !ok || got != strconv.Itoa(int(want)) {
			t.Errorf("gateway port %d published as %q, want %q (ports: %+v)", want, got, strconv.Itoa(int(want)), gw.Ports)
		}
	}
}

func TestCompose_GatewayEnvironment(t *testing.T) {
	p := loadCompose(t)
	gw := composeService(t, p, "gateway")

	tests := []struct {
		env, scheme, service string
		port                 int
	}{
		{"RULESGATE_UPSTREAM", "http", "issuer", 9000},
		{"RULESGATE_REDIS", "redis", "redis", 6379},
	}
	for _, tt := range tests {
		u := urlFromEnv(t, gw.Environment, tt.env)
		if u == nil {
			continue
		}
		if u.Scheme != tt.scheme || u.Hostname() != tt.service || u.Port() != strconv.Itoa(tt.port) {
			t.Errorf("%s = %s, want %s://%s:%d", tt.env, u, tt.scheme, tt.service, tt.port)
		}
		if _, err := p.GetService(tt.service); err != nil {
			t.Errorf("%s names service %s: %v", tt.env, tt.service, err)
		}
	}

	// The image carries examples/ as /etc/rulesgate/: every path the
	// gateway is given there must exist in examples/.
	for _, name := range []string{"RULESGATE_RULES", "RULESGATE_CLIENTS", "RULESGATE_CONFIGURATION"} {
		v := gw.Environment[name]
		if v == nil {
			t.Errorf("gateway environment has no %s", name)
			continue
		}
		rel, ok := strings.CutPrefix(*v, "/etc/rulesgate/")
		if !ok {
			t.Errorf("%s = %q, want a path under /etc/rulesgate/ (examples/ in the image)", name, *v)
			continue
		}
		if _, err := os.Stat(filepath.Join(examplesDir, rel)); err != nil {
			t.Errorf("%s = %q, but examples/ has no %s: %v", name, *v, rel, err)
		}
	}
	if v := gw.Environment["RULESGATE_ADMIN_LISTEN"]; v == nil || !strings.HasSuffix(*v, ":"+strconv.Itoa(adminPort)) {
		t.Errorf("RULESGATE_ADMIN_LISTEN = %v, want the admin listener on :%d (the health check asks it)", v, adminPort)
	}
}

func TestCompose_HealthChecks(t *testing.T) {
	p := loadCompose(t)
	for _, name := range []string{"gateway", "redis", "issuer"} {
		s := composeService(t, p, name)
		hc := s.HealthCheck
		if hc == nil || hc.Disable || len(hc.Test) < 2 || hc.Test[0] == "NONE" {
			t.Errorf("service %s: no health check (%+v)", name, hc)
			continue
		}
		if hc.Interval == nil || hc.Retries == nil {
			t.Errorf("service %s: health check without interval or retries: %+v", name, hc)
		}
	}

	// The gateway's and the issuer's images have no shell: their checks
	// must run the healthcheck binary, in exec form.
	for _, name := range []string{"gateway", "issuer"} {
		hc := composeService(t, p, name).HealthCheck
		if hc == nil {
			continue
		}
		if got, want := hc.Test[0], "CMD"; got != want {
			t.Errorf("service %s: health check form %q, want %q (no shell in the image)", name, got, want)
		}
		if len(hc.Test) > 1 && hc.Test[1] != "/healthcheck" {
			t.Errorf("service %s: health check runs %q, want /healthcheck", name, hc.Test[1])
		}
	}
}

func TestCompose_DependsOn(t *testing.T) {
	gw := composeService(t, loadCompose(t), "gateway")
	for _, name := range []string{"redis", "issuer"} {
		dep, ok := gw.DependsOn[name]
		if !ok {
			t.Errorf("gateway does not depend on %s", name)
			continue
		}
		// The gateway gives up when the issuer's discovery fails for
		// about 8 s: it must start once the issuer answers, not before.
		if got, want := dep.Condition, types.ServiceConditionHealthy; got != want {
			t.Errorf("gateway depends on %s with condition %q, want %q", name, got, want)
		}
	}
}

func TestCompose_BuildTargets(t *testing.T) {
	p := loadCompose(t)
	stages := dockerfileStages(t)
	for _, name := range []string{"gateway", "issuer"} {
		s := composeService(t, p, name)
		if s.Build == nil {
			t.Errorf("service %s is not built", name)
			continue
		}
		if got, want := filepath.ToSlash(s.Build.Dockerfile), "deploy/Dockerfile"; got != want {
			t.Errorf("service %s: dockerfile %q, want %q", name, got, want)
		}
		if !slices.Contains(stages, s.Build.Target) {
			t.Errorf("service %s: build target %q is not a stage of deploy/Dockerfile (%v)", name, s.Build.Target, stages)
		}
	}
}

// TestDockerfile checks what the image promises without building it: a
// non-root user, both ports, a health check that needs no shell, and
// the gateway as the default (last) stage.
func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	final := lastStage(string(data))
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^FROM gcr\.io/distroless/static-debian12:nonroot AS gateway$`),
		regexp.MustCompile(`(?m)^USER 65532:65532$`),
		regexp.MustCompile(`(?m)^EXPOSE 8080 9090$`),
		regexp.MustCompile(`(?m)^\s+CMD \["/healthcheck"\]$`),
		regexp.MustCompile(`(?m)^COPY examples/ /etc/rulesgate/$`),
		regexp.MustCompile(`(?m)^ENTRYPOINT \["/rulesgate"\]$`),
	} {
		if !want.MatchString(final) {
			t.Errorf("the final stage of deploy/Dockerfile does not match %s", want)
		}
	}
	if !regexp.MustCompile(`CGO_ENABLED=0`).Match(data) || !regexp.MustCompile(`-trimpath`).Match(data) {
		t.Errorf("deploy/Dockerfile does not build a static, trimmed binary")
	}
}

func composeService(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, err := p.GetService(name)
	if err != nil {
		t.Fatalf("service %s: %v", name, err)
	}
	return s
}

func urlFromEnv(t *testing.T, env types.MappingWithEquals, name string) *url.URL {
	t.Helper()
	v := env[name]
	if v == nil {
		t.Errorf("environment has no %s", name)
		return nil
	}
	u, err := url.Parse(*v)
	if err != nil {
		t.Errorf("%s = %q: %v", name, *v, err)
		return nil
	}
	return u
}

var stageRE = regexp.MustCompile(`(?mi)^FROM\s+\S+\s+AS\s+(\S+)\s*$`)

func dockerfileStages(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	var stages []string
	for _, m := range stageRE.FindAllStringSubmatch(string(data), -1) {
		stages = append(stages, m[1])
	}
	return stages
}

// lastStage returns the Dockerfile from its last FROM on.
func lastStage(dockerfile string) string {
	i := strings.LastIndex(dockerfile, "\nFROM ")
	if i < 0 {
		return dockerfile
	}
	return dockerfile[i+1:]
}

// manifests is the rendered kustomization, each document decoded into
// its Kubernetes API type.
type manifests struct {
	deployments  []*appsv1.Deployment
	statefulSets []*appsv1.StatefulSet
	services     []*corev1.Service
	configMaps   []*corev1.ConfigMap
	secrets      []*corev1.Secret
	hpas         []*autoscalingv2.HorizontalPodAutoscaler
	pdbs         []*policyv1.PodDisruptionBudget
}

// render runs kustomize on deploy/kubernetes with the options `kubectl
// kustomize` uses by default (files below the kustomization root only),
// and decodes every document strictly.
func render(t *testing.T) *manifests {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), kustomizeRoot)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", kustomizeRoot, err)
	}
	out, err := m.AsYaml()
	if err != nil {
		t.Fatalf("kustomize build %s: %v", kustomizeRoot, err)
	}
	ms, err := decodeAll(out)
	if err != nil {
		t.Fatalf("decode rendered manifests: %v", err)
	}
	return ms
}

// decodeAll decodes each YAML document of data into the API type its
// apiVersion and kind name. A kind this deployment does not use, a field
// the type does not have, a duplicate field or a value of the wrong type
// is an error.
func decodeAll(data []byte) (*manifests, error) {
	ms := &manifests{}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return ms, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return nil, fmt.Errorf("read apiVersion and kind: %w", err)
		}
		if err := ms.add(tm, doc); err != nil {
			return nil, err
		}
	}
}

func (ms *manifests) add(tm metav1.TypeMeta, doc []byte) error {
	switch tm.APIVersion + " " + tm.Kind {
	case "apps/v1 Deployment":
		return decodeInto(doc, &ms.deployments)
	case "apps/v1 StatefulSet":
		return decodeInto(doc, &ms.statefulSets)
	case "v1 Service":
		return decodeInto(doc, &ms.services)
	case "v1 ConfigMap":
		return decodeInto(doc, &ms.configMaps)
	case "v1 Secret":
		return decodeInto(doc, &ms.secrets)
	case "autoscaling/v2 HorizontalPodAutoscaler":
		return decodeInto(doc, &ms.hpas)
	case "policy/v1 PodDisruptionBudget":
		return decodeInto(doc, &ms.pdbs)
	}
	return fmt.Errorf("unexpected %s %s", tm.APIVersion, tm.Kind)
}

// decodeInto decodes doc strictly into a new T and appends it to list.
func decodeInto[T any](doc []byte, list *[]*T) error {
	v := new(T)
	if err := decodeStrict(doc, v); err != nil {
		return err
	}
	*list = append(*list, v)
	return nil
}

// decodeStrict decodes one YAML document into v as an API server does
// with strict field validation: converted to JSON, then decoded with
// field names matched case-sensitively, and an unknown or duplicate field
// as an error. (encoding/json, under sigs.k8s.io/yaml.UnmarshalStrict,
// matches names regardless of case, and so would take
// readOnlyRootFileSystem for readOnlyRootFilesystem.)
func decodeStrict(doc []byte, v any) error {
	data, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return fmt.Errorf("decode %T: %w", v, err)
	}
	strict, err := kjson.UnmarshalStrict(data, v)
	if err != nil {
		return fmt.Errorf("decode %T: %w", v, err)
	}
	if len(strict) > 0 {
		return fmt.Errorf("decode %T: %w", v, errors.Join(strict...))
	}
	return nil
}

func TestDecodeStrict_RejectsUnknownFields(t *testing.T) {
	tests := []struct {
		name, doc string
	}{
		{"top level", `
apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  replica: 3
`},
		{"deep in a container", `
apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  template:
    spec:
      containers:
        - name: x
          image: x
          securityContext:
            readOnlyRootFileSystem: true
`},
		{"field name in another case", `
apiVersion: v1
kind: Service
metadata: {name: x}
spec:
  Type: ClusterIP
`},
		{"duplicate field", `
apiVersion: v1
kind: Service
metadata: {name: x}
spec:
  type: ClusterIP
  type: NodePort
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeAll([]byte(tt.doc)); err == nil {
				t.Errorf("decodeAll accepted:\n%s", tt.doc)
			}
		})
	}

	// The same documents without the mistake decode: the error above is
	// the strictness, not something else.
	good := `
apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  replicas: 3
  template:
    spec:
      containers:
        - name: x
          image: x
          securityContext:
            readOnlyRootFilesystem: true
`
	ms, err := decodeAll([]byte(good))
	if err != nil {
		t.Fatalf("decodeAll: %v", err)
	}
	if got := len(ms.deployments); got != 1 {
		t.Fatalf("decoded %d deployments, want 1", got)
	}
	if c := ms.deployments[0].Spec.Template.Spec.Containers[0]; c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
		t.Errorf("readOnlyRootFilesystem not decoded: %+v", c.SecurityContext)
	}

	if _, err := decodeAll([]byte("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n")); err == nil {
		t.Errorf("decodeAll accepted a kind the deployment does not use")
	}
}

// gateway returns the gateway's Deployment and its container.
func (ms *manifests) gateway(t *testing.T) (*appsv1.Deployment, *corev1.Container) {
	t.Helper()
	for _, d := range ms.deployments {
		for i, c := range d.Spec.Template.Spec.Containers {
			if c.Name == "rulesgate" {
				return d, &d.Spec.Template.Spec.Containers[i]
			}
		}
	}
	t.Fatalf("no Deployment with a rulesgate container among %d", len(ms.deployments))
	return nil, nil
}

func TestKubernetes_GatewayDeployment(t *testing.T) {
	ms := render(t)
	d, c := ms.gateway(t)

	if d.Spec.Replicas == nil || *d.Spec.Replicas != 3 {
		t.Errorf("replicas = %s, want 3", show(d.Spec.Replicas))
	}
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("selector %v does not select the pod template's labels %v (%v)", d.Spec.Selector, d.Spec.Template.Labels, err)
	}

	tests := []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{
		{"liveness", c.LivenessProbe, "/healthz"},
		{"readiness", c.ReadinessProbe, "/readyz"},
	}
	for _, tt := range tests {
		if tt.probe == nil || tt.probe.HTTPGet == nil {
			t.Errorf("%s probe: %+v, want GET %s", tt.name, tt.probe, tt.path)
			continue
		}
		if got := tt.probe.HTTPGet.Path; got != tt.path {
			t.Errorf("%s probe path %q, want %q", tt.name, got, tt.path)
		}
		if got := containerPort(c, tt.probe.HTTPGet.Port); got != adminPort {
			t.Errorf("%s probe port %s is %d, want the admin port %d", tt.name, tt.probe.HTTPGet.Port.String(), got, adminPort)
		}
	}

	for name, port := range map[string]int32{"http": clientPort, "admin": adminPort} {
		if got := containerPort(c, intstr.FromString(name)); got != port {
			t.Errorf("container port %s = %d, want %d", name, got, port)
		}
	}
	env := envOf(c)
	if got := env["RULESGATE_ADMIN_LISTEN"]; got != ":"+strconv.Itoa(adminPort) {
		t.Errorf("RULESGATE_ADMIN_LISTEN = %q, want :%d", got, adminPort)
	}
	if got := env["RULESGATE_LISTEN"]; got != ":"+strconv.Itoa(clientPort) {
		t.Errorf("RULESGATE_LISTEN = %q, want :%d", got, clientPort)
	}
}

func TestKubernetes_Security(t *testing.T) {
	ms := render(t)
	type workload struct {
		name string
		spec corev1.PodSpec
	}
	var workloads []workload
	for _, d := range ms.deployments {
		workloads = append(workloads, workload{"Deployment " + d.Name, d.Spec.Template.Spec})
	}
	for _, s := range ms.statefulSets {
		workloads = append(workloads, workload{"StatefulSet " + s.Name, s.Spec.Template.Spec})
	}

	for _, w := range workloads {
		if pc := w.spec.SecurityContext; pc == nil || !isTrue(pc.RunAsNonRoot) {
			t.Errorf("%s: pod runAsNonRoot not true", w.name)
		}
		for _, c := range w.spec.Containers {
			sc := c.SecurityContext
			if sc == nil {
				t.Errorf("%s/%s: no securityContext", w.name, c.Name)
				continue
			}
			if !isTrue(sc.RunAsNonRoot) {
				t.Errorf("%s/%s: runAsNonRoot not true", w.name, c.Name)
			}
			if !isTrue(sc.ReadOnlyRootFilesystem) {
				t.Errorf("%s/%s: readOnlyRootFilesystem not true", w.name, c.Name)
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Errorf("%s/%s: allowPrivilegeEscalation not false", w.name, c.Name)
			}
			if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
				t.Errorf("%s/%s: capabilities %+v, want drop [ALL] and nothing added", w.name, c.Name, sc.Capabilities)
			}
			for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if _, ok := c.Resources.Requests[res]; !ok {
					t.Errorf("%s/%s: no %s request", w.name, c.Name, res)
				}
				if _, ok := c.Resources.Limits[res]; !ok {
					t.Errorf("%s/%s: no %s limit", w.name, c.Name, res)
				}
			}
		}
	}
}

func TestKubernetes_GOMEMLIMIT(t *testing.T) {
	_, c := render(t).gateway(t)
	raw, ok := envOf(c)["GOMEMLIMIT"]
	if !ok {
		t.Fatal("GOMEMLIMIT is not set")
	}
	soft, err := parseGoMemLimit(raw)
	if err != nil {
		t.Fatalf("GOMEMLIMIT = %q: %v", raw, err)
	}
	limit, ok := c.Resources.Limits[corev1.ResourceMemory]
	if !ok {
		t.Fatal("no memory limit")
	}
	// A little under: room for what the runtime does not count (stacks
	// outside the heap, the binary), yet close enough to matter.
	ratio := float64(soft) / float64(limit.Value())
	if ratio < 0.75 || ratio >= 0.95 {
		t.Errorf("GOMEMLIMIT %s is %.0f%% of the memory limit %s, want 75-95%%", raw, 100*ratio, limit.String())
	}
}

// parseGoMemLimit reads GOMEMLIMIT as the Go runtime does: a number of
// bytes with an optional B, KiB, MiB, GiB or TiB suffix.
func parseGoMemLimit(s string) (int64, error) {
	units := []struct {
		suffix string
		shift  uint
	}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"B", 0}}
	shift := uint(0)
	for _, u := range units {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			s, shift = n, u.shift
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("not a positive size")
	}
	return n << shift, nil
}

func TestKubernetes_RulesAndKeys(t *testing.T) {
	ms := render(t)
	d, c := ms.gateway(t)
	env := envOf(c)

	tests := []struct {
		env    string // the flag's variable
		volume string // the volume it reads from
		key    string // the ConfigMap's or Secret's key, "" for a directory
		secret bool
	}{
		{"RULESGATE_RULES", "rules", "", false},
		{"RULESGATE_CLIENTS", "config", "clients.json", false},
		{"RULESGATE_CONFIGURATION", "config", "configuration.json", false},
		{"RULESGATE_SIGNING_KEY", "signing-keys", "signing-keys.json", true},
		{"RULESGATE_ADMIN_TOKEN_FILE", "admin-token", "admin-token", true},
	}
	for _, tt := range tests {
		mount := mountOf(c, tt.volume)
		if mount == nil {
			t.Errorf("%s: volume %s is not mounted", tt.env, tt.volume)
			continue
		}
		if !mount.ReadOnly {
			t.Errorf("%s: volume %s is mounted read-write", tt.env, tt.volume)
		}
		want := mount.MountPath
		if tt.key != "" {
			want += "/" + tt.key
		}
		if got := env[tt.env]; got != want {
			t.Errorf("%s = %q, want %q", tt.env, got, want)
		}

		vol := volumeOf(d, tt.volume)
		switch {
		case vol == nil:
			t.Errorf("%s: no volume %s", tt.env, tt.volume)
		case tt.secret && vol.Secret != nil:
			s := ms.secret(vol.Secret.SecretName)
			if s == nil {
				t.Errorf("%s: volume %s names Secret %s, which is not rendered", tt.env, tt.volume, vol.Secret.SecretName)
			} else if _, ok := s.Data[tt.key]; !ok {
				t.Errorf("%s: Secret %s has no key %s", tt.env, s.Name, tt.key)
			}
			// Readable by the gateway's group (fsGroup), by no one else.
			if m := vol.Secret.DefaultMode; m == nil || *m&0o007 != 0 {
				t.Errorf("%s: Secret volume %s defaultMode %s, want no access for others (0440)", tt.env, tt.volume, showMode(m))
			}
		case !tt.secret && vol.ConfigMap != nil:
			cm := ms.configMap(vol.ConfigMap.Name)
			if cm == nil {
				t.Errorf("%s: volume %s names ConfigMap %s, which is not rendered", tt.env, tt.volume, vol.ConfigMap.Name)
			} else if _, ok := cm.Data[tt.key]; tt.key != "" && !ok {
				t.Errorf("%s: ConfigMap %s has no key %s", tt.env, cm.Name, tt.key)
			}
		default:
			t.Errorf("%s: volume %s is %+v, want a %s", tt.env, tt.volume, vol.VolumeSource, map[bool]string{true: "Secret", false: "ConfigMap"}[tt.secret])
		}
	}

	// The key set is a JWK set with a private key: what --signing-key reads.
	if vol := volumeOf(d, "signing-keys"); vol != nil && vol.Secret != nil {
		if s := ms.secret(vol.Secret.SecretName); s != nil {
			var set struct {
				Keys []struct {
					Kty, Kid, Alg, D string
				} `json:"keys"`
			}
			if err := json.Unmarshal(s.Data["signing-keys.json"], &set); err != nil {
				t.Errorf("signing-keys.json: %v", err)
			} else if len(set.Keys) == 0 || set.Keys[0].D == "" || set.Keys[0].Kid == "" {
				t.Errorf("signing-keys.json holds no private key with a kid: %+v", set.Keys)
			}
		}
	}
	if token := strings.TrimSpace(string(ms.secretByPrefix("rulesgate-admin-token").Data["admin-token"])); len(token) < 16 {
		t.Errorf("the admin token has %d characters; the gateway wants 16 or more", len(token))
	}
}

// TestKubernetes_RulesMatchExamples keeps the rules the manifests carry
// (kustomize reads files below the kustomization only, so they are a
// copy) the same as examples/.
func TestKubernetes_RulesMatchExamples(t *testing.T) {
	ms := render(t)
	for _, tt := range []struct{ configMap, dir, glob string }{
		{"rulesgate-rules", "rules", "*.lua"},
		{"rulesgate-config", "", "*.json"},
	} {
		cm := ms.configMapByPrefix(tt.configMap)
		if cm == nil {
			t.Errorf("no ConfigMap %s", tt.configMap)
			continue
		}
		files, err := filepath.Glob(filepath.Join(examplesDir, tt.dir, tt.glob))
		if err != nil || len(files) == 0 {
			t.Fatalf("examples/%s: %v files (%v)", tt.dir, len(files), err)
		}
		var keys []string
		for k := range cm.Data {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var names []string
		for _, f := range files {
			names = append(names, filepath.Base(f))
			want, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if got := cm.Data[filepath.Base(f)]; got != string(want) {
				t.Errorf("ConfigMap %s: %s differs from examples/%s: copy it to deploy/kubernetes",
					cm.Name, filepath.Base(f), filepath.Join(tt.dir, filepath.Base(f)))
			}
		}
		if !slices.Equal(keys, names) {
			t.Errorf("ConfigMap %s holds %v, examples/%s holds %v", cm.Name, keys, tt.dir, names)
		}
	}
}

func TestKubernetes_PodDisruptionBudget(t *testing.T) {
	ms := render(t)
	d, _ := ms.gateway(t)
	var found bool
	for _, pdb := range ms.pdbs {
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			continue
		}
		found = true
		minOK := pdb.Spec.MinAvailable != nil && pdb.Spec.MinAvailable.Type == intstr.Int && pdb.Spec.MinAvailable.IntVal >= 2
		maxOK := pdb.Spec.MaxUnavailable != nil && *pdb.Spec.MaxUnavailable == intstr.FromInt32(1)
		if !minOK && !maxOK {
			t.Errorf("PodDisruptionBudget %s: minAvailable %v, maxUnavailable %v; want minAvailable >= 2 or maxUnavailable 1",
				pdb.Name, pdb.Spec.MinAvailable, pdb.Spec.MaxUnavailable)
		}
	}
	if !found {
		t.Errorf("no PodDisruptionBudget selects the gateway's pods %v", d.Spec.Template.Labels)
	}
}

func TestKubernetes_HorizontalPodAutoscaler(t *testing.T) {
	ms := render(t)
	d, _ := ms.gateway(t)
	if len(ms.hpas) != 1 {
		t.Fatalf("%d HorizontalPodAutoscalers, want 1", len(ms.hpas))
	}
	hpa := ms.hpas[0]
	ref := hpa.Spec.ScaleTargetRef
	if ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || ref.Name != d.Name {
		t.Errorf("HPA targets %s %s %s, want apps/v1 Deployment %s", ref.APIVersion, ref.Kind, ref.Name, d.Name)
	}
	if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas != 3 {
		t.Errorf("HPA minReplicas = %s, want 3", show(hpa.Spec.MinReplicas))
	}
	if hpa.Spec.MaxReplicas < 3 {
		t.Errorf("HPA maxReplicas = %d, want at least minReplicas", hpa.Spec.MaxReplicas)
	}
	if len(hpa.Spec.Metrics) == 0 {
		t.Errorf("HPA has no metric")
	}
}

func TestKubernetes_GatewayService(t *testing.T) {
	ms := render(t)
	d, c := ms.gateway(t)
	svc := ms.serviceSelecting(d.Spec.Template.Labels)
	if svc == nil {
		t.Fatalf("no Service selects the gateway's pods %v", d.Spec.Template.Labels)
	}
	var toClients bool
	for _, p := range svc.Spec.Ports {
		port := containerPort(c, p.TargetPort)
		if port == adminPort {
			t.Errorf("Service %s exposes the admin port (port %d)", svc.Name, p.Port)
		}
		toClients = toClients || port == clientPort
	}
	if !toClients {
		t.Errorf("Service %s has no port to the client port %d: %+v", svc.Name, clientPort, svc.Spec.Ports)
	}
}

func TestKubernetes_Redis(t *testing.T) {
	ms := render(t)
	_, c := ms.gateway(t)

	// Redis runs as a StatefulSet or a Deployment, with a Service in front.
	var podLabels map[string]string
	for _, s := range ms.statefulSets {
		if hasImage(s.Spec.Template.Spec, "redis") {
			podLabels = s.Spec.Template.Labels
		}
	}
	for _, d := range ms.deployments {
		if hasImage(d.Spec.Template.Spec, "redis") {
			podLabels = d.Spec.Template.Labels
		}
	}
	if podLabels == nil {
		t.Fatal("no StatefulSet or Deployment runs redis")
	}
	svc := ms.serviceSelecting(podLabels)
	if svc == nil {
		t.Fatalf("no Service selects the Redis pods %v", podLabels)
	}

	// The gateway's --redis names that Service, from its settings.
	raw, ok := ms.envWithFrom(c)["RULESGATE_REDIS"]
	if !ok {
		t.Fatal("the gateway has no RULESGATE_REDIS")
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("RULESGATE_REDIS = %q: %v", raw, err)
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		t.Errorf("RULESGATE_REDIS scheme %q, want redis or rediss", u.Scheme)
	}
	if host := u.Hostname(); host != svc.Name && !strings.HasPrefix(host, svc.Name+".") {
		t.Errorf("RULESGATE_REDIS host %q, want the Service %s", host, svc.Name)
	}
	var portOK bool
	for _, p := range svc.Spec.Ports {
		portOK = portOK || strconv.Itoa(int(p.Port)) == u.Port()
	}
	if !portOK {
		t.Errorf("RULESGATE_REDIS port %q is not a port of Service %s", u.Port(), svc.Name)
	}

	if _, ok := ms.envWithFrom(c)["RULESGATE_UPSTREAM"]; !ok {
		t.Error("the gateway has no RULESGATE_UPSTREAM")
	}
}

func isTrue(b *bool) bool { return b != nil && *b }

// show prints an optional number for a message.
func show(n *int32) string {
	if n == nil {
		return "unset"
	}
	return strconv.Itoa(int(*n))
}

func showMode(m *int32) string {
	if m == nil {
		return "unset"
	}
	return fmt.Sprintf("%#o", *m)
}

func hasImage(spec corev1.PodSpec, name string) bool {
	for _, c := range spec.Containers {
		if c.Image == name || strings.HasPrefix(c.Image, name+":") || strings.HasPrefix(c.Image, name+"@") {
			return true
		}
	}
	return false
}

// containerPort resolves a probe's or a Service's target port, by number
// or by name, to the container's port number; 0 when it names none.
func containerPort(c *corev1.Container, port intstr.IntOrString) int32 {
	if port.Type == intstr.Int {
		return port.IntVal
	}
	for _, p := range c.Ports {
		if p.Name == port.StrVal {
			return p.ContainerPort
		}
	}
	return 0
}

// envOf returns the container's env values given inline.
func envOf(c *corev1.Container) map[string]string {
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	return env
}

// envWithFrom returns the container's environment as the kubelet builds
// it: the ConfigMaps of envFrom, then env over them.
func (ms *manifests) envWithFrom(c *corev1.Container) map[string]string {
	env := map[string]string{}
	for _, from := range c.EnvFrom {
		if from.ConfigMapRef == nil {
			continue
		}
		if cm := ms.configMap(from.ConfigMapRef.Name); cm != nil {
			for k, v := range cm.Data {
				env[from.Prefix+k] = v
			}
		}
	}
	for k, v := range envOf(c) {
		env[k] = v
	}
	return env
}

func mountOf(c *corev1.Container, volume string) *corev1.VolumeMount {
	for i := range c.VolumeMounts {
		if c.VolumeMounts[i].Name == volume {
			return &c.VolumeMounts[i]
		}
	}
	return nil
}

func volumeOf(d *appsv1.Deployment, name string) *corev1.Volume {
	for i := range d.Spec.Template.Spec.Volumes {
		if d.Spec.Template.Spec.Volumes[i].Name == name {
			return &d.Spec.Template.Spec.Volumes[i]
		}
	}
	return nil
}

func (ms *manifests) secret(name string) *corev1.Secret {
	for _, s := range ms.secrets {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// secretByPrefix finds a generated Secret, whose name kustomize suffixes
// with a hash of its contents.
func (ms *manifests) secretByPrefix(prefix string) *corev1.Secret {
	for _, s := range ms.secrets {
		if s.Name == prefix || strings.HasPrefix(s.Name, prefix+"-") {
			return s
		}
	}
	return &corev1.Secret{}
}

func (ms *manifests) configMap(name string) *corev1.ConfigMap {
	for _, cm := range ms.configMaps {
		if cm.Name == name {
			return cm
		}
	}
	return nil
}

func (ms *manifests) configMapByPrefix(prefix string) *corev1.ConfigMap {
	for _, cm := range ms.configMaps {
		if cm.Name == prefix || strings.HasPrefix(cm.Name, prefix+"-") {
			return cm
		}
	}
	return nil
}

func (ms *manifests) serviceSelecting(podLabels map[string]string) *corev1.Service {
	for _, svc := range ms.services {
		if len(svc.Spec.Selector) > 0 && labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(podLabels)) {
			return svc
		}
	}
	return nil
}
