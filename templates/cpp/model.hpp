{% for line in header %}//{% if !line.is_empty() %} {{ line }}{% endif %}
{% endfor %}
#ifndef {{ guard }}
#define {{ guard }}

{% for inc in includes %}#include {{ inc }}
{% endfor %}
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

// Runs the model on one sample, with working memory on the stack.
inline void predict({{ params }}) noexcept {
    float scratch[kScratchLen > 0 ? kScratchLen : 1];
    predict_with_scratch({{ call_args }}, scratch);
}

}  // namespace {{ namespace }}

#endif  // {{ guard }}
