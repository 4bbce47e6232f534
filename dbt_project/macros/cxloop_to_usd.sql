{% macro cxloop_to_usd(amount, usd_rate) %}
    cast(round({{ amount }} * {{ usd_rate }}, 2) as decimal(18, 2))
{% endmacro %}
