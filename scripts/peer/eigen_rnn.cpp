// The vanilla RNN cell with Eigen's static matrices, as RTNeural's Eigen backend computes a dense
// layer and its tanh: h' = tanh(W·[x; h] + b), W row-major on input, stored as Eigen keeps it.
#include <Eigen/Dense>
#include <cstddef>

namespace {

template <int I, int H>
struct Cell {
    Eigen::Matrix<float, H, I + H> w;
    Eigen::Matrix<float, H, 1> b;
    Eigen::Matrix<float, I + H, 1> xh;

    Cell(const float* w_row_major, const float* bias) {
        for (int r = 0; r < H; ++r)
            for (int c = 0; c < I + H; ++c) w(r, c) = w_row_major[r * (I + H) + c];
        for (int r = 0; r < H; ++r) b(r) = bias[r];
        xh.setZero();
    }

    // `n` dependent steps from `h`, over the inputs `xs` (n·I values), the last state into `h`.
    void steps(const float* xs, std::size_t n, float* h) {
        xh.template tail<H>() = Eigen::Map<const Eigen::Matrix<float, H, 1>>(h);
        for (std::size_t t = 0; t < n; ++t) {
            xh.template head<I>() = Eigen::Map<const Eigen::Matrix<float, I, 1>>(xs + t * I);
            Eigen::Matrix<float, H, 1> z = w * xh + b;
            xh.template tail<H>() = z.array().tanh();
        }
        Eigen::Map<Eigen::Matrix<float, H, 1>> out(h);
        out = xh.template tail<H>();
    }
};

}  // namespace

#define CELL(I, H)                                                                          \
    extern "C" void* eigen_new_##I##_##H(const float* w, const float* b) {                  \
        return new Cell<I, H>(w, b);                                                        \
    }                                                                                       \
    extern "C" void eigen_steps_##I##_##H(void* cell, const float* xs, std::size_t n,       \
                                          float* h) {                                       \
        static_cast<Cell<I, H>*>(cell)->steps(xs, n, h);                                    \
    }                                                                                       \
    extern "C" void eigen_free_##I##_##H(void* cell) { delete static_cast<Cell<I, H>*>(cell); }

CELL(3, 2)
CELL(16, 16)
CELL(32, 64)
CELL(64, 128)
CELL(128, 256)
