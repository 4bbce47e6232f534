{#
    Share of rows where `condition` holds, as a double. DuckDB averages the decimal literals 1.0/0.0 to a double;
    Spark would keep a decimal(6,5) and lose digits, so its implementation averages doubles.
#}
{% macro cxloop_share(condition) %}
    {{ return(adapter.dispatch('cxloop_share', 'cxloop')(condition)) }}
{% endmacro %}

{% macro default__cxloop_share(condition) %}
    avg(case when {{ condition }} then 1.0 else 0.0 end)
{% endmacro %}

{% macro spark__cxloop_share(condition) %}
    avg(case when {{ condition }} then cast(1 as double) else cast(0 as double) end)
{% endmacro %}
