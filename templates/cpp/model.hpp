{% for line in header %}//{% if !line.is_empty() %} {{ line }}{% endif %}
{% endfor %}
#ifndef {{ guard }}
#define {{ guard }}
{% if !c_api.is_empty() %}
#ifdef __cplusplus
{% endif %}
{% for inc in includes %}#include {{ inc }}
{% endfor %}{% if noinline %}
// Each layer stays a function of its own: inlined into predict_with_scratch (each is called
// once), they make one huge function that compilers optimise in superlinear time. Define
// KERAS2SRC_NOINLINE as empty to let the compiler decide.
#ifndef KERAS2SRC_NOINLINE
#if defined(__GNUC__) || defined(__clang__)
#define KERAS2SRC_NOINLINE __attribute__((noinline))
#elif defined(_MSC_VER)
#define KERAS2SRC_NOINLINE __declspec(noinline)
#else
#define KERAS2SRC_NOINLINE
#endif
#endif
{% endif %}{% if !weights_blob.is_empty() %}
{{ weights_blob }}{% endif %}
namespace {{ namespace }} {

{% for c in constants %}{{ c }}
{% endfor %}
namespace detail {
{% if !math.is_empty() %}
{{ math }}
{% endif %}{% for w in weights %}
{{ w }}
{% endfor %}{% for l in layers %}
{{ l }}
{% endfor %}
}  // namespace detail

// Runs the model with caller-provided working memory (kScratchLen floats).
inline void predict_with_scratch({{ params }}, float* scratch) noexcept {
{% if !uses_scratch %}    (void)scratch;
{% endif %}{% for c in calls %}    {{ c }}
{% endfor %}}
{% for f in entry_points %}
{{ f }}
{% endfor %}
}  // namespace {{ namespace }}
{% if !c_api.is_empty() %}
#endif  // __cplusplus

{{ c_api }}
{% endif %}
#endif  // {{ guard }}
