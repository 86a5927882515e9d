// Package nodetest runs Node.js scripts against real npm packages, for the
// tests that check mmdb with other databases' official clients (Qdrant's
// REST client, LanceDB). Packages are installed once into a cache folder,
// pinned to the versions the tests name.
package nodetest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Install makes sure the pinned npm packages (name@version) are installed
// and returns the folder holding their node_modules. It skips the test,
// saying why, when node or npm is missing; in CI (CI set) that is a
// failure instead, since .ci/run installs them.
func Install(t testing.TB, pkgs ...string) string {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is not installed, and CI must run this test (.ci/run installs nodejs and npm)", tool)
			}
			t.Skipf("%s is not installed: this test drives real npm packages (%s); install nodejs and npm to run it", tool, strings.Join(pkgs, ", "))
		}
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	name := strings.NewReplacer("@", "", "/", "-").Replace(strings.Join(pkgs, "+"))
	dir := filepath.Join(cache, "mmdb-nodetest", name)
	stamp := filepath.Join(dir, ".installed")
	if _, err := os.Stat(stamp); err == nil {
		return dir
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"name":"mmdb-nodetest","private":true,"type":"module"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	args := append([]string{"install", "--no-audit", "--no-fund", "--save-exact", "--loglevel=error"}, pkgs...)
	cmd := exec.CommandContext(ctx, "npm", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm install %s: %v\n%s", strings.Join(pkgs, " "), err, out)
	}
	if err := os.WriteFile(stamp, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Run runs script (a file path) with node from dir (Install's folder, so
// its imports resolve), with args, and returns its standard output; a
// failing script fails the test with its output.
func Run(t testing.TB, dir, script string, timeout time.Duration, args ...string) []byte {
	t.Helper()
	abs, err := filepath.Abs(script)
	if err != nil {
		t.Fatal(err)
	}
	// The script is copied beside node_modules: Node resolves a module's
	// imports from the module's own folder.
	local := filepath.Join(dir, filepath.Base(abs))
	src, err := os.ReadFile(abs)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(local, src, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", append([]string{local}, args...)...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %s: %v\nstderr:\n%s\nstdout:\n%s", filepath.Base(script), err, stderr.String(), tail(stdout.String()))
	}
	return stdout.Bytes()
}

func tail(s string) string {
	if len(s) > 4000 {
		return "..." + s[len(s)-4000:]
	}
	return s
}
