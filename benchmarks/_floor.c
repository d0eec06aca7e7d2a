/* The memory-bandwidth floor of an elementwise value_and_gradient: read two
   arrays, write one of the same size, on a given number of OpenMP threads.
   Compiled by bench_elementwise.py at run time (-O3 -fopenmp -march=native)
   and loaded with ctypes. */
#include <stddef.h>

void floor_add_f32(const float *restrict a, const float *restrict b, float *restrict out,
                   ptrdiff_t n, int threads)
{
    #pragma omp parallel for simd schedule(static) num_threads(threads)
    for (ptrdiff_t i = 0; i < n; i++)
        out[i] = a[i] + b[i];
}

void floor_add_f64(const double *restrict a, const double *restrict b, double *restrict out,
                   ptrdiff_t n, int threads)
{
    #pragma omp parallel for simd schedule(static) num_threads(threads)
    for (ptrdiff_t i = 0; i < n; i++)
        out[i] = a[i] + b[i];
}
