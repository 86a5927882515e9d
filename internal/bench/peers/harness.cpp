// Peer harness for `mmdb bench -peers`: builds and searches hnswlib's and
// FAISS's HNSW indexes on the same vectors mmdb is measured on, and prints
// one JSON object per line. Built by the Go benchmark with g++ against
// Debian's libhnswlib-dev and libfaiss-dev; not part of the mmdb library.
//
// usage: harness ENGINE DIR METRIC M EFC THREADS(1,2) EFS(16,32,...) K STEPS(100,10,2 or -) FILTER_EFS
//   ENGINE hnswlib | faiss;  METRIC l2 | ip
//   DIR holds base.fvecs, query.fvecs and gt.ivecs (exact top-K per query),
//   and for each filter step s gt_allow<s>.ivecs: the exact top-K among the
//   vectors whose ID is a multiple of s (1/s of them allowed), for its
//   first queries (as many as it has rows), swept over FILTER_EFS. hnswlib
//   filters with its filter functor (hnswlib >= 0.7, MMDB_HNSWLIB_FILTER),
//   FAISS with an IDSelector in its search parameters.
//
// Times are CPU time of the process (CLOCK_PROCESS_CPUTIME_ID) with wall
// time beside them; memory is the resident set's growth over the first
// build (/proc/self/statm). FAISS is Debian's prebuilt libfaiss, searched
// through its batch API one query at a time.
#include <hnswlib/hnswlib.h>
#include <faiss/IndexHNSW.h>
#include <faiss/index_io.h>
#include <faiss/impl/IDSelector.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <atomic>
#include <vector>
#include <set>
#include <memory>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

using Clock = std::chrono::steady_clock;

static double since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
}

static double cpuNow() {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// residentBytes is the resident set size, from /proc/self/statm.
static long residentBytes() {
    std::ifstream in("/proc/self/statm");
    long size = 0, resident = 0;
    if (!(in >> size >> resident)) return 0;
    return resident * sysconf(_SC_PAGESIZE);
}

// peakBytes is the peak resident set since the last resetPeak (VmHWM).
static long peakBytes() {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6)) * 1024;
    }
    return 0;
}

// resetPeak resets VmHWM to the current resident size, and says whether
// it could (else VmHWM is the process's peak since it started).
static bool resetPeak() {
    std::ofstream out("/proc/self/clear_refs");
    out << "5";
    out.flush();
    return bool(out);
}

static std::vector<float> readVecs(const std::string &path, int &dim, size_t &n) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open " + path);
    std::vector<float> out;
    n = 0;
    int d;
    while (in.read(reinterpret_cast<char *>(&d), 4)) {
        dim = d;
        size_t off = out.size();
        out.resize(off + d);
        in.read(reinterpret_cast<char *>(out.data() + off), 4 * (size_t)d);
        n++;
    }
    return out;
}

static std::vector<int> list(const std::string &s) {
    std::vector<int> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) out.push_back(std::stoi(item));
    return out;
}

static long fileSize(const std::string &p) {
    struct stat st;
    return stat(p.c_str(), &st) == 0 ? (long)st.st_size : -1;
}

struct Searcher {
    virtual ~Searcher() {}
    virtual void setEf(int ef) = 0;
    virtual void search(const float *q, int k, std::vector<long> &out) = 0;
    // filtered searches among the IDs that are multiples of step; false
    // when the engine cannot filter.
    virtual bool filtered(const float *q, int k, long step, std::vector<long> &out) = 0;
};

#ifdef MMDB_HNSWLIB_FILTER
struct StepFilter : hnswlib::BaseFilterFunctor {
    long step = 1;
    bool operator()(hnswlib::labeltype id) override { return (long)id % step == 0; }
};
#endif

struct StepSelector : faiss::IDSelector {
    long step = 1;
    bool is_member(faiss::Index::idx_t id) const override { return id % step == 0; }
};

struct HnswlibSearcher : Searcher {
    hnswlib::HierarchicalNSW<float> *h;
    void setEf(int ef) override { h->setEf(ef); }
    void search(const float *q, int k, std::vector<long> &out) override {
        auto res = h->searchKnn(q, k);
        out.clear();
        while (!res.empty()) { out.push_back((long)res.top().second); res.pop(); }
    }
    bool filtered(const float *q, int k, long step, std::vector<long> &out) override {
#ifdef MMDB_HNSWLIB_FILTER
        StepFilter f;
        f.step = step;
        auto res = h->searchKnn(q, k, &f);
        out.clear();
        while (!res.empty()) { out.push_back((long)res.top().second); res.pop(); }
        return true;
#else
        (void)q; (void)k; (void)step; (void)out;
        return false;
#endif
    }
};

struct FaissSearcher : Searcher {
    faiss::IndexHNSWFlat *f;
    std::vector<float> d;
    std::vector<faiss::Index::idx_t> l;
    void setEf(int ef) override { f->hnsw.efSearch = ef; }
    void search(const float *q, int k, std::vector<long> &out) override {
        d.resize(k); l.resize(k);
        f->search(1, q, k, d.data(), l.data());
        out.assign(l.begin(), l.end());
    }
    bool filtered(const float *q, int k, long step, std::vector<long> &out) override {
        StepSelector sel;
        sel.step = step;
        faiss::SearchParametersHNSW p;
        p.efSearch = f->hnsw.efSearch;
        p.sel = &sel;
        d.resize(k); l.resize(k);
        f->search(1, q, k, d.data(), l.data(), &p);
        out.clear();
        for (auto id : l) if (id >= 0) out.push_back(id);
        return true;
    }
};

int main(int argc, char **argv) {
    if (argc != 11) {
        std::fprintf(stderr, "usage: harness ENGINE DIR METRIC M EFC THREADS EFS K STEPS FILTER_EFS\n");
        return 2;
    }
    std::string engine = argv[1], dir = argv[2], metric = argv[3];
    int M = std::stoi(argv[4]), efc = std::stoi(argv[5]), K = std::stoi(argv[8]);
    auto threads = list(argv[6]), efs = list(argv[7]);
    std::vector<int> steps;
    if (std::string(argv[9]) != "-") steps = list(argv[9]);
    auto filterEfs = list(argv[10]);
    int dim = 0, gdim = 0;
    size_t n = 0, nq = 0, ng = 0;
    auto base = readVecs(dir + "/base.fvecs", dim, n);
    auto qs = readVecs(dir + "/query.fvecs", dim, nq);
    auto gtRaw = readVecs(dir + "/gt.ivecs", gdim, ng);
    const int *gt = reinterpret_cast<const int *>(gtRaw.data());

    std::unique_ptr<hnswlib::SpaceInterface<float>> space;
    if (metric == "l2") space.reset(new hnswlib::L2Space(dim));
    else space.reset(new hnswlib::InnerProductSpace(dim));

    std::unique_ptr<hnswlib::HierarchicalNSW<float>> h;
    std::unique_ptr<faiss::IndexHNSWFlat> f;
    bool first = true;
    for (int t : threads) {
        h.reset();
        f.reset();
        long rss0 = residentBytes();
        bool peakReset = resetPeak();
        auto start = Clock::now();
        double cpu0 = cpuNow();
        if (engine == "hnswlib") {
            h.reset(new hnswlib::HierarchicalNSW<float>(space.get(), n, M, efc, 100));
            h->addPoint(base.data(), 0);
            std::atomic<size_t> next(1);
            std::vector<std::thread> ws;
            for (int w = 0; w < t; w++)
                ws.emplace_back([&]() {
                    for (size_t i; (i = next++) < n;) h->addPoint(base.data() + i * dim, i);
                });
            for (auto &w : ws) w.join();
        } else {
            omp_set_num_threads(t);
            f.reset(new faiss::IndexHNSWFlat(dim, M, metric == "l2" ? faiss::METRIC_L2 : faiss::METRIC_INNER_PRODUCT));
            f->hnsw.efConstruction = efc;
            f->add(n, base.data());
        }
        double buildCPU = cpuNow() - cpu0, build = since(start);
        double rss = first ? (double)(residentBytes() - rss0) / n : -1;
        double peak = first && peakReset ? (double)(peakBytes() - rss0) / n : -1;
        first = false;
        std::string path = dir + "/" + engine + ".idx";
        start = Clock::now();
        if (engine == "hnswlib") h->saveIndex(path); else faiss::write_index(f.get(), path.c_str());
        double save = since(start);
        double load;
        if (engine == "hnswlib") {
            start = Clock::now();
            std::unique_ptr<hnswlib::HierarchicalNSW<float>> loaded(new hnswlib::HierarchicalNSW<float>(space.get(), path));
            load = since(start); // the copy is destroyed outside the timer
        } else {
            start = Clock::now();
            std::unique_ptr<faiss::Index> loaded(faiss::read_index(path.c_str()));
            load = since(start);
        }
        std::printf("{\"kind\":\"build\",\"engine\":\"%s\",\"threads\":%d,\"inserts_per_s\":%.1f,\"inserts_per_cpu_s\":%.1f,\"rss_bytes_per_vector\":%.1f,\"peak_rss_bytes_per_vector\":%.1f,\"saved_bytes_per_vector\":%.1f,\"save_s\":%.4f,\"load_s\":%.4f}\n",
                    engine.c_str(), t, n / build, n / buildCPU, rss, peak, (double)fileSize(path) / n, save, load);
        std::fflush(stdout);
    }

    omp_set_num_threads(1);
    std::unique_ptr<Searcher> s;
    if (engine == "hnswlib") { auto x = new HnswlibSearcher(); x->h = h.get(); s.reset(x); }
    else { auto x = new FaissSearcher(); x->f = f.get(); s.reset(x); }
    std::vector<long> out;
    // One sweep: step 0 unfiltered, else among the multiples of step; over
    // the first nqs queries.
    auto sweep = [&](long step, const int *truth, int tdim, size_t nqs, const std::vector<int> &efList) {
        for (int ef : efList) {
            s->setEf(ef);
            long hit = 0, total = 0;
            int width = std::min(K, tdim); // fewer than K when a filter allows fewer
            for (size_t i = 0; i < nqs; i++) {
                if (step == 0) s->search(qs.data() + i * dim, K, out);
                else if (!s->filtered(qs.data() + i * dim, K, step, out)) return;
                std::set<long> want(truth + i * tdim, truth + i * tdim + width);
                total += width;
                for (long id : out) hit += want.count(id);
            }
            // Search until 0.3 s of CPU time and every query once, reading
            // the clock every 16 searches.
            size_t runs = 0;
            auto start = Clock::now();
            double cpu0 = cpuNow();
            while (cpuNow() - cpu0 < 0.3 || runs < nqs) {
                for (int j = 0; j < 16; j++, runs++) {
                    if (step == 0) s->search(qs.data() + (runs % nqs) * dim, K, out);
                    else s->filtered(qs.data() + (runs % nqs) * dim, K, step, out);
                }
            }
            double cpu = cpuNow() - cpu0, wall = since(start);
            std::printf("{\"kind\":\"search\",\"engine\":\"%s\",\"step\":%ld,\"ef\":%d,\"recall\":%.4f,\"qps\":%.1f,\"wall_qps\":%.1f}\n",
                        engine.c_str(), step, ef, total > 0 ? (double)hit / total : 1.0, runs / cpu, runs / wall);
            std::fflush(stdout);
        }
    };
    sweep(0, gt, gdim, nq, efs);
    for (int step : steps) {
        int fdim = 0;
        size_t fn = 0;
        auto fgt = readVecs(dir + "/gt_allow" + std::to_string(step) + ".ivecs", fdim, fn);
        sweep(step, reinterpret_cast<const int *>(fgt.data()), fdim, std::min(fn, nq), filterEfs);
    }
    return 0;
}
