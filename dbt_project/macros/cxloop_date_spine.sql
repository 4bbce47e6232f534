{#
    One row per day (column date_day) from start_date to end_date inclusive, both date expressions
    evaluated against the single-row relation `bounds`. Nothing runs at compile time, so the spine
    follows the data of each build. Returns no rows when the bounds are null (no data yet).
#}
{% macro cxloop_date_spine(bounds, start_date, end_date) %}
    {{ return(adapter.dispatch('cxloop_date_spine', 'cxloop')(bounds, start_date, end_date)) }}
{% endmacro %}

{% macro default__cxloop_date_spine(bounds, start_date, end_date) %}
    select cast({{ dbt.dateadd('day', 'spine_offsets.generated_number - 1', 'spine_bounds.start_day') }} as date) as date_day
    from (
        {{ dbt.generate_series(var('cxloop_spine_max_days', 7320)) }}
    ) as spine_offsets
    cross join (
        select
            cast({{ start_date }} as date) as start_day,
            cast({{ end_date }} as date) as end_day
        from {{ bounds }}
    ) as spine_bounds
    where spine_offsets.generated_number - 1
        <= {{ dbt.datediff('spine_bounds.start_day', 'spine_bounds.end_day', 'day') }}
{% endmacro %}

{% macro duckdb__cxloop_date_spine(bounds, start_date, end_date) %}
    select cast(unnest(generate_series(
        cast({{ start_date }} as timestamp),
        cast({{ end_date }} as timestamp),
        interval 1 day
    )) as date) as date_day
    from {{ bounds }}
    where {{ start_date }} is not null and {{ end_date }} is not null
{% endmacro %}

{% macro spark__cxloop_date_spine(bounds, start_date, end_date) %}
    select explode(sequence(cast({{ start_date }} as date), cast({{ end_date }} as date), interval 1 day)) as date_day
    from {{ bounds }}
    where {{ start_date }} is not null and {{ end_date }} is not null
{% endmacro %}
