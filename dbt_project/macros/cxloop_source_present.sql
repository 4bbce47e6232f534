{% macro cxloop_source_present(name) %}
    {%- set present = var('cxloop_sources', none) -%}
    {%- if present is none -%}
        {{ return(true) }}
    {%- endif -%}
    {%- if present is string -%}
        {%- set present = present.split(',') | map('trim') | list -%}
    {%- endif -%}
    {{ return(name in present) }}
{% endmacro %}
