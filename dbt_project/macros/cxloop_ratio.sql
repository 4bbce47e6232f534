{% macro cxloop_ratio(numerator, denominator) %}
    cast({{ numerator }} as double) / nullif({{ denominator }}, 0)
{% endmacro %}
