// CUDA graphs for homeonorm: libtorch's at::cuda::CUDAGraph and a side stream to
// capture on, behind a C interface (tch has neither a graph nor a stream API).
// src/cuda_graph.rs is the Rust side and says how a training step uses it.
//
// Every function returns NULL on success or an error message the caller frees with
// hn_free_error: a C++ exception never crosses into Rust.

#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>
#include <dlfcn.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <optional>
#include <string>
#include <vector>

namespace {

char* error_copy(const char* what) {
    char* copy = static_cast<char*>(std::malloc(std::strlen(what) + 1));
    if (copy != nullptr) {
        std::strcpy(copy, what);
    }
    return copy;
}

template <typename F>
char* guarded(F&& f) {
    try {
        f();
        return nullptr;
    } catch (const std::exception& e) {
        return error_copy(e.what());
    } catch (...) {
        return error_copy("unknown C++ exception");
    }
}

}  // namespace

struct HnGraph {
    // keep_graph: the captured graph stays readable (its nodes are counted) until replayed.
    at::cuda::CUDAGraph graph{/*keep_graph=*/true};
    // Capture needs a stream other than the default one; replay runs on the default one.
    c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool();
    std::optional<c10::cuda::CUDAStream> before;
    size_t nodes = 0;
    size_t kernels = 0;
};

extern "C" {

void hn_free_error(char* error) { std::free(error); }

char* hn_graph_new(HnGraph** out) {
    return guarded([&] { *out = new HnGraph(); });
}

void hn_graph_free(HnGraph* g) { delete g; }

// Makes the side stream current, after everything queued so far has run (the work
// there then sees what the default stream did).
char* hn_graph_enter_side_stream(HnGraph* g) {
    return guarded([&] {
        c10::cuda::device_synchronize();
        g->before = c10::cuda::getCurrentCUDAStream();
        c10::cuda::setCurrentCUDAStream(g->side);
    });
}

// Makes the stream current before hn_graph_enter_side_stream current again, after the
// side stream's work has run.
char* hn_graph_leave_side_stream(HnGraph* g) {
    return guarded([&] {
        c10::cuda::device_synchronize();
        if (g->before) {
            c10::cuda::setCurrentCUDAStream(*g->before);
            g->before.reset();
        }
    });
}

char* hn_graph_capture_begin(HnGraph* g) {
    return guarded([&] { g->graph.capture_begin(); });
}

// Ends the capture, counts the graph's nodes and kernels, and instantiates it.
char* hn_graph_capture_end(HnGraph* g) {
    return guarded([&] {
        g->graph.capture_end();
        // The runtime's node queries, found in the libcudart libtorch loaded (the shim
        // links no CUDA runtime of its own): counts only, so none found is no error.
        using GetNodes = cudaError_t (*)(cudaGraph_t, cudaGraphNode_t*, size_t*);
        using NodeType = cudaError_t (*)(cudaGraphNode_t, cudaGraphNodeType*);
        auto get_nodes = reinterpret_cast<GetNodes>(dlsym(RTLD_DEFAULT, "cudaGraphGetNodes"));
        auto node_type = reinterpret_cast<NodeType>(dlsym(RTLD_DEFAULT, "cudaGraphNodeGetType"));
        cudaGraph_t raw = g->graph.raw_cuda_graph();
        size_t count = 0;
        if (get_nodes != nullptr && get_nodes(raw, nullptr, &count) == cudaSuccess) {
            g->nodes = count;
            if (node_type != nullptr && count > 0) {
                std::vector<cudaGraphNode_t> nodes(count);
                if (get_nodes(raw, nodes.data(), &count) == cudaSuccess) {
                    for (size_t i = 0; i < count; ++i) {
                        cudaGraphNodeType type;
                        if (node_type(nodes[i], &type) == cudaSuccess && type == cudaGraphNodeTypeKernel) {
                            ++g->kernels;
                        }
                    }
                }
            }
        }
        g->graph.instantiate();
    });
}

void hn_graph_counts(const HnGraph* g, size_t* nodes, size_t* kernels) {
    *nodes = g->nodes;
    *kernels = g->kernels;
}

// Launches the captured work on the current stream.
char* hn_graph_replay(HnGraph* g) {
    return guarded([&] { g->graph.replay(); });
}

}  // extern "C"
