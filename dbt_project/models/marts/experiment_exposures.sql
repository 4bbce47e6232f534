{%- set has_events = cxloop_source_present('events') -%}
{%- set window_days = var('cxloop_experiment_window_days') -%}

-- Both branches keep the same parents, so dbt orders the model the same way with or without events:
-- depends_on: {{ ref('orders') }}
-- depends_on: {{ ref('int_events_stitched') }}

{% if has_events %}
with

events as (

    select * from {{ ref('int_events_stitched') }}

),

orders as (

    select * from {{ ref('orders') }}

),

exposures as (

    select
        experiment_id,
        variation_id,
        person_key,
        customer_key,
        event_at,
        message_id

    from events
    where event_name = 'Experiment Viewed'
        and experiment_id is not null
        and variation_id is not null
        and person_key is not null

),

ranked as (

    select
        *,
        row_number() over (
            partition by experiment_id, person_key
            order by event_at, message_id
        ) as exposure_rank

    from exposures

),

units as (

    select
        experiment_id,
        person_key,
        max(customer_key) as customer_key,
        max(case when exposure_rank = 1 then variation_id end) as variation_id,
        count(distinct variation_id) as variations_seen,
        count(*) as exposures,
        min(event_at) as first_exposed_at,
        max(event_at) as last_exposed_at

    from ranked
    group by experiment_id, person_key

),

conversions as (

    select
        events.person_key,
        events.event_at,
        coalesce(orders.net_usd, 0) as revenue_usd

    from events
    left join orders
        on events.order_id = orders.order_id
    where events.event_name = 'Order Completed'
        and events.person_key is not null

),

data_end as (

    select max(event_at) as last_event_at from events

),

outcomes as (

    select
        units.experiment_id,
        units.person_key,
        sum(case
            when conversions.event_at >= units.first_exposed_at
                and conversions.event_at < {{ dbt.dateadd('day', window_days, 'units.first_exposed_at') }}
            then 1 else 0 end) as orders,
        sum(case
            when conversions.event_at >= units.first_exposed_at
                and conversions.event_at < {{ dbt.dateadd('day', window_days, 'units.first_exposed_at') }}
            then conversions.revenue_usd else 0 end) as revenue_usd,
        sum(case
            when conversions.event_at < units.first_exposed_at
                and conversions.event_at >= {{ dbt.dateadd('day', -window_days, 'units.first_exposed_at') }}
            then 1 else 0 end) as pre_orders,
        sum(case
            when conversions.event_at < units.first_exposed_at
                and conversions.event_at >= {{ dbt.dateadd('day', -window_days, 'units.first_exposed_at') }}
            then conversions.revenue_usd else 0 end) as pre_revenue_usd

    from units
    left join conversions
        on units.person_key = conversions.person_key
    group by units.experiment_id, units.person_key

),

final as (

    select
        units.experiment_id,
        units.person_key as unit_key,
        units.customer_key,
        units.variation_id,
        cast(units.variations_seen as {{ dbt.type_bigint() }}) as variations_seen,
        cast(units.exposures as {{ dbt.type_bigint() }}) as exposures,
        units.first_exposed_at,
        units.last_exposed_at,
        cast({{ window_days }} as integer) as window_days,
        {{ dbt.dateadd('day', window_days, 'units.first_exposed_at') }} <= data_end.last_event_at as window_complete,
        cast(case when outcomes.orders > 0 then 1 else 0 end as integer) as converted,
        cast(outcomes.orders as {{ dbt.type_bigint() }}) as orders,
        cast(outcomes.revenue_usd as decimal(18, 2)) as revenue_usd,
        cast(case when outcomes.pre_orders > 0 then 1 else 0 end as integer) as pre_converted,
        cast(outcomes.pre_orders as {{ dbt.type_bigint() }}) as pre_orders,
        cast(outcomes.pre_revenue_usd as decimal(18, 2)) as pre_revenue_usd

    from units
    inner join outcomes
        on units.experiment_id = outcomes.experiment_id
        and units.person_key = outcomes.person_key
    cross join data_end

)

select * from final
{% else %}
{#- Without events there are no exposures: an empty table of the same shape, so readers and the analysis
    downstream always find it. -#}
select
    cast(null as {{ dbt.type_string() }}) as experiment_id,
    cast(null as {{ dbt.type_string() }}) as unit_key,
    cast(null as {{ dbt.type_string() }}) as customer_key,
    cast(null as {{ dbt.type_string() }}) as variation_id,
    cast(null as {{ dbt.type_bigint() }}) as variations_seen,
    cast(null as {{ dbt.type_bigint() }}) as exposures,
    cast(null as {{ dbt.type_timestamp() }}) as first_exposed_at,
    cast(null as {{ dbt.type_timestamp() }}) as last_exposed_at,
    cast(null as integer) as window_days,
    cast(null as boolean) as window_complete,
    cast(null as integer) as converted,
    cast(null as {{ dbt.type_bigint() }}) as orders,
    cast(null as decimal(18, 2)) as revenue_usd,
    cast(null as integer) as pre_converted,
    cast(null as {{ dbt.type_bigint() }}) as pre_orders,
    cast(null as decimal(18, 2)) as pre_revenue_usd
where 1 = 0
{% endif %}
