// Reads one sample (seed::kInputLen numbers) from stdin, prints the model's outputs.
#include <cstdio>

#include "seed.hpp"

int main() {
    float input[seed::kInputLen];
    for (float& x : input) {
        if (std::scanf("%f", &x) != 1) {
            std::fprintf(stderr, "expected %zu numbers on stdin\n", seed::kInputLen);
            return 1;
        }
    }
    float output[seed::kOutputLen];
    seed::predict(input, output);
    for (float y : output) {
        std::printf("%.9g\n", y);
    }
    return 0;
}
