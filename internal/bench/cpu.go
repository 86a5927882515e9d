package bench

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// processCPU is the CPU time this process has used, user plus system, on
// every thread (the garbage collector's included).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// residentBytes is the process's resident set size from /proc/self/statm,
// or 0 where there is no such file.
func residentBytes() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * uint64(os.Getpagesize())
}

// resetPeak resets the process's peak resident set (VmHWM) to its
// current size, where Linux allows it (/proc/self/clear_refs, "5"), and
// says whether it could: without the reset, VmHWM is the process's peak
// since it started, which is no build's.
func resetPeak() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// peakBytes is the process's peak resident set since the last resetPeak
// (VmHWM in /proc/self/status), or 0 where it cannot be read.
func peakBytes() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseUint(f[0], 10, 64)
				if err == nil {
					return kb * 1024
				}
			}
		}
	}
	return 0
}

// Machine describes where a run happened: what a reader needs to weigh
// its figures.
type Machine struct {
	// CPU is the model name from /proc/cpuinfo.
	CPU string `json:"cpu"`
	// Flags are the SIMD flags that matter here (avx2, fma, avx512f,
	// avx512_vnni, ...) that the CPU has.
	Flags []string `json:"flags"`
	// Cores is the number of logical CPUs Go sees.
	Cores int `json:"cores"`
	// LoadBefore and LoadAfter are the 1-minute load averages at the
	// start and end of the run.
	LoadBefore float64 `json:"load_before"`
	LoadAfter  float64 `json:"load_after"`
	// GoVersion is the Go toolchain mmdb was built with.
	GoVersion string `json:"go_version"`
}

// simdFlags are the /proc/cpuinfo flags the machine line reports.
var simdFlags = []string{"sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni", "amx_int8"}

// DescribeMachine reads /proc/cpuinfo and /proc/loadavg (fields stay empty
// where they are missing).
func DescribeMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), LoadBefore: loadAverage(), GoVersion: runtime.Version()}
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return m
	}
	var flags map[string]bool
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "model name":
			if m.CPU == "" {
				m.CPU = strings.TrimSpace(v)
			}
		case "flags":
			if flags == nil {
				flags = map[string]bool{}
				for _, f := range strings.Fields(v) {
					flags[f] = true
				}
			}
		}
	}
	for _, f := range simdFlags {
		if flags[f] {
			m.Flags = append(m.Flags, f)
		}
	}
	return m
}

// loadAverage is the 1-minute load average, or 0 where it cannot be read.
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// Finish records the load average at the end of the run.
func (m *Machine) Finish() { m.LoadAfter = loadAverage() }

// String is the machine line printed above the tables.
func (m Machine) String() string {
	return m.CPU + ", " + strconv.Itoa(m.Cores) + " cores, flags " + strings.Join(m.Flags, " ") +
		"; load average " + strconv.FormatFloat(m.LoadBefore, 'f', 2, 64) + " -> " + strconv.FormatFloat(m.LoadAfter, 'f', 2, 64) + "; " + m.GoVersion
}
