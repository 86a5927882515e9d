// Peer harness for `mmdb bench -peers`: builds and searches hnswlib's and
// FAISS's HNSW indexes on the same vectors mmdb is measured on, and prints
// one JSON object per line. Built by the Go benchmark with g++ against
// Debian's libhnswlib-dev and libfaiss-dev; not part of the mmdb library.
//
// usage: harness ENGINE DIR METRIC M EFC THREADS(1,2) EFS(16,32,...) K
//   ENGINE hnswlib | faiss;  METRIC l2 | ip
//   DIR holds base.fvecs, query.fvecs and gt.ivecs (exact top-K per query)
#include <hnswlib/hnswlib.h>
#include <faiss/IndexHNSW.h>
#include <faiss/index_io.h>
#include <omp.h>

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

using Clock = std::chrono::steady_clock;

static double since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
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
};

struct HnswlibSearcher : Searcher {
    hnswlib::HierarchicalNSW<float> *h;
    void setEf(int ef) override { h->setEf(ef); }
    void search(const float *q, int k, std::vector<long> &out) override {
        auto res = h->searchKnn(q, k);
        out.clear();
        while (!res.empty()) { out.push_back((long)res.top().second); res.pop(); }
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
};

int main(int argc, char **argv) {
    if (argc != 9) {
        std::fprintf(stderr, "usage: harness ENGINE DIR METRIC M EFC THREADS EFS K\n");
        return 2;
    }
    std::string engine = argv[1], dir = argv[2], metric = argv[3];
    int M = std::stoi(argv[4]), efc = std::stoi(argv[5]), K = std::stoi(argv[8]);
    auto threads = list(argv[6]), efs = list(argv[7]);
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
    for (int t : threads) {
        auto start = Clock::now();
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
        double build = since(start);
        std::string path = dir + "/" + engine + ".idx";
        start = Clock::now();
        if (engine == "hnswlib") h->saveIndex(path); else faiss::write_index(f.get(), path.c_str());
        double save = since(start);
        start = Clock::now();
        if (engine == "hnswlib") {
            hnswlib::HierarchicalNSW<float> loaded(space.get(), path);
        } else {
            std::unique_ptr<faiss::Index> loaded(faiss::read_index(path.c_str()));
        }
        double load = since(start);
        std::printf("{\"kind\":\"build\",\"engine\":\"%s\",\"threads\":%d,\"inserts_per_s\":%.1f,\"bytes_per_vector\":%.1f,\"save_s\":%.4f,\"load_s\":%.4f}\n",
                    engine.c_str(), t, n / build, (double)fileSize(path) / n, save, load);
        std::fflush(stdout);
    }

    omp_set_num_threads(1);
    std::unique_ptr<Searcher> s;
    if (engine == "hnswlib") { auto x = new HnswlibSearcher(); x->h = h.get(); s.reset(x); }
    else { auto x = new FaissSearcher(); x->f = f.get(); s.reset(x); }
    std::vector<long> out;
    for (int ef : efs) {
        s->setEf(ef);
        long hit = 0;
        for (size_t i = 0; i < nq; i++) {
            s->search(qs.data() + i * dim, K, out);
            std::set<long> want(gt + i * gdim, gt + i * gdim + K);
            for (long id : out) hit += want.count(id);
        }
        size_t runs = 0;
        auto start = Clock::now();
        while (since(start) < 0.5 || runs < nq) {
            s->search(qs.data() + (runs % nq) * dim, K, out);
            runs++;
        }
        std::printf("{\"kind\":\"search\",\"engine\":\"%s\",\"ef\":%d,\"recall\":%.4f,\"qps\":%.1f}\n",
                    engine.c_str(), ef, (double)hit / (nq * K), runs / since(start));
        std::fflush(stdout);
    }
    return 0;
}
