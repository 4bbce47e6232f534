{#
    Engines that cannot read the DuckDB warehouse read its tables from the Parquet lake
    (orchestration/lib/lake.py: `<CXLOOP_LAKE_DIR>/<schema>/<table>/`). Run from on-run-start: every source a
    selected node reads is (re)registered as an external table, so each build sees the lake as exported for it
    and a source nothing selected reads may be absent. DuckDB reads its own tables: nothing to do.
#}
{% macro cxloop_register_lake() %}
    {{ return(adapter.dispatch('cxloop_register_lake', 'cxloop')()) }}
{% endmacro %}

{% macro default__cxloop_register_lake() %}
{% endmacro %}

{% macro spark__cxloop_register_lake() %}
    {%- if execute -%}
        {%- set lake = env_var('CXLOOP_LAKE_DIR') -%}
        {%- set needed = [] -%}
        {%- for unique_id in selected_resources -%}
            {%- set node = graph.nodes.get(unique_id) -%}
            {%- if node is not none -%}
                {%- for parent in node.depends_on.nodes if parent.startswith('source.') and parent not in needed -%}
                    {%- do needed.append(parent) -%}
                {%- endfor -%}
            {%- endif -%}
        {%- endfor -%}
        {%- for source_id in needed | sort -%}
            {%- set source = graph.sources[source_id] -%}
            {%- set identifier = source.identifier or source.name -%}
            {%- do run_query('create database if not exists ' ~ source.schema) -%}
            {%- do run_query('drop table if exists ' ~ source.schema ~ '.' ~ identifier) -%}
            {%- do run_query(
                'create table ' ~ source.schema ~ '.' ~ identifier ~ ' using parquet location '
                ~ "'" ~ lake ~ '/' ~ source.schema ~ '/' ~ identifier ~ "'") -%}
            {{ log('lake: ' ~ source.schema ~ '.' ~ identifier, info=false) }}
        {%- endfor -%}
    {%- endif -%}
{% endmacro %}
