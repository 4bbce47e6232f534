{%- set has_events = cxloop_source_present('events') -%}
{%- set horizon = var('cxloop_horizon_days') | int -%}
{%- set step = var('cxloop_cutoff_step_days') | int -%}
{%- set train_cutoffs = var('cxloop_train_cutoffs') | int -%}

with

orders as (

    select order_date from {{ ref('int_orders_enriched') }}

),

{% if has_events %}
events as (

    select event_date from {{ ref('int_events_stitched') }}

),
{% endif %}

observed as (

    select order_date as observed_date from orders
    {% if has_events %}
    union all
    select event_date as observed_date from events
    {% endif %}

),

bounds as (

    select
        min(observed_date) as first_date,
        cast({{ dbt.dateadd('day', 1, 'max(observed_date)') }} as date) as scoring_cutoff

    from observed

),

offsets as (

    select
        'score' as cutoff_role,
        0 as cutoff_rank,
        0 as days_before_scoring

    union all

    select
        'evaluate' as cutoff_role,
        1 as cutoff_rank,
        {{ horizon }} as days_before_scoring

    union all

    select
        'train' as cutoff_role,
        1 + generated_number as cutoff_rank,
        {{ 2 * horizon }} + (generated_number - 1) * {{ step }} as days_before_scoring

    from ({{ dbt.generate_series(train_cutoffs) }}) as train_offsets

),

cutoffs as (

    select
        cast({{ dbt.dateadd('day', '-offsets.days_before_scoring', 'bounds.scoring_cutoff') }} as date)
            as cutoff_date,
        offsets.cutoff_role,
        offsets.cutoff_rank,
        bounds.first_date,
        bounds.scoring_cutoff

    from offsets
    cross join bounds

)

select
    cutoff_date,
    cutoff_role,
    cutoff_rank,
    scoring_cutoff,
    {{ horizon }} as horizon_days

from cutoffs
where cutoff_date > first_date
