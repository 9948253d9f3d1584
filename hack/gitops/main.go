// landlord-health reads Kubernetes objects as JSON and prints, one JSON line per object, how the two GitOps
// clients read them: Flux's kstatus (sigs.k8s.io/cli-utils status.Compute) and Argo CD's health
// (gitops-engine's GetResourceHealth with the Lua health checks that Argo CD's settings manager loads from an
// argocd-cm ConfigMap holding deploy/argocd/*.lua, as the README there installs them).
//
//	landlord-health -argocd-dir deploy/argocd [FILE...]   (standard input without FILE)
//
// Input: JSON values one after another, each an object or a List of objects (`kubectl get -o json`).
// Output: {"kind","namespace","name","kstatus":{"status","message"},"argocd":{"status","message"}} per object,
// in input order; "argocd" is null when no health check applies (as Argo CD shows no health then).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/argoproj/argo-cd/v2/common"
	appv1 "github.com/argoproj/argo-cd/v2/pkg/apis/application/v1alpha1"
	"github.com/argoproj/argo-cd/v2/util/lua"
	"github.com/argoproj/argo-cd/v2/util/settings"
	"github.com/argoproj/gitops-engine/pkg/health"
	log "github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

const argocdNamespace = "argocd"

type reading struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

type line struct {
	Kind      string   `json:"kind"`
	Namespace string   `json:"namespace"`
	Name      string   `json:"name"`
	Kstatus   reading  `json:"kstatus"`
	Argocd    *reading `json:"argocd"`
}

func main() {
	dir := flag.String("argocd-dir", "deploy/argocd", "directory of Argo CD health checks named <group>_<Kind>.lua")
	flag.Parse()
	// The settings manager logs at info level; only our JSON lines belong on stdout.
	log.SetOutput(os.Stderr)
	log.SetLevel(log.WarnLevel)
	if err := run(*dir, flag.Args(), os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "landlord-health:", err)
		os.Exit(1)
	}
}

func run(dir string, files []string, stdin io.Reader, out io.Writer) error {
	overrides, err := resourceOverrides(dir)
	if err != nil {
		return err
	}
	var objects []*unstructured.Unstructured
	if len(files) == 0 {
		if objects, err = decode(stdin); err != nil {
			return fmt.Errorf("standard input: %w", err)
		}
	}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		more, err := decode(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		objects = append(objects, more...)
	}
	enc := json.NewEncoder(out)
	for _, obj := range objects {
		l, err := read(obj, overrides)
		if err != nil {
			return fmt.Errorf("%s %s/%s: %w", obj.GetKind(), obj.GetNamespace(), obj.GetName(), err)
		}
		if err := enc.Encode(l); err != nil {
			return err
		}
	}
	return nil
}

// resourceOverrides builds argocd-cm as deploy/argocd/README.md installs it (one key
// resource.customizations.health.<group>_<Kind> per script) and reads it back through Argo CD's own
// settings manager, so the key parsing is Argo CD's, not ours.
func resourceOverrides(dir string) (map[string]appv1.ResourceOverride, error) {
	scripts, err := filepath.Glob(filepath.Join(dir, "*.lua"))
	if err != nil {
		return nil, err
	}
	if len(scripts) == 0 {
		return nil, fmt.Errorf("no *.lua health checks in %s", dir)
	}
	data := map[string]string{}
	for _, path := range scripts {
		text, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		data["resource.customizations.health."+strings.TrimSuffix(filepath.Base(path), ".lua")] = string(text)
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name:      common.ArgoCDConfigMapName,
			Namespace: argocdNamespace,
			Labels:    map[string]string{"app.kubernetes.io/part-of": "argocd"},
		},
		Data: data,
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:      common.ArgoCDSecretName,
			Namespace: argocdNamespace,
			Labels:    map[string]string{"app.kubernetes.io/part-of": "argocd"},
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mgr := settings.NewSettingsManager(ctx, fake.NewClientset(cm, secret), argocdNamespace)
	return mgr.GetResourceOverrides()
}

func read(obj *unstructured.Unstructured, overrides map[string]appv1.ResourceOverride) (line, error) {
	l := line{Kind: obj.GetKind(), Namespace: obj.GetNamespace(), Name: obj.GetName()}
	ks, err := status.Compute(obj)
	if err != nil {
		return l, fmt.Errorf("kstatus: %w", err)
	}
	l.Kstatus = reading{Status: ks.Status.String(), Message: ks.Message}
	// What Argo CD's application controller calls for every live resource (controller/health.go).
	hs, err := health.GetResourceHealth(obj, lua.ResourceHealthOverrides(overrides))
	if err != nil {
		return l, fmt.Errorf("argo cd: %w", err)
	}
	if hs != nil {
		l.Argocd = &reading{Status: string(hs.Status), Message: hs.Message}
	}
	return l, nil
}

// decode reads JSON values until EOF; a List contributes its items. Numbers become int64 as they do in
// Argo CD and Flux (apimachinery's unstructured JSON scheme), not float64.
func decode(r io.Reader) ([]*unstructured.Unstructured, error) {
	dec := json.NewDecoder(r)
	var objects []*unstructured.Unstructured
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
			return objects, nil
		} else if err != nil {
			return nil, err
		}
		decoded, err := runtime.Decode(unstructured.UnstructuredJSONScheme, raw)
		if err != nil {
			return nil, err
		}
		switch o := decoded.(type) {
		case *unstructured.UnstructuredList:
			for i := range o.Items {
				objects = append(objects, &o.Items[i])
			}
		case *unstructured.Unstructured:
			objects = append(objects, o)
		default:
			return nil, fmt.Errorf("unexpected %T", decoded)
		}
	}
}
