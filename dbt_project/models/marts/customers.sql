{%- set has_events = cxloop_source_present('events') -%}

with

customers as (

    select * from {{ ref('stg_crm__customers') }}

),

orders as (

    select * from {{ ref('int_orders_enriched') }}

),

{% if has_events %}
events as (

    select * from {{ ref('int_events_stitched') }}

),

first_events as (

    select
        customer_key,
        min(event_at) as first_event_at

    from events
    where customer_key is not null
    group by customer_key

),
{% endif %}

as_of as (

    select max(observed_at) as as_of_at

    from (
        select max(ordered_at) as observed_at from orders
        {% if has_events %}
        union all
        select max(event_at) as observed_at from events
        {% endif %}
    ) as observations

),

customer_orders as (

    select
        customer_key,
        count(*) as orders_count,
        sum(case when is_completed then 1 else 0 end) as completed_orders,
        sum(case when is_completed or is_refunded then total_usd else 0 end) as gross_revenue_usd,
        sum(case when is_refunded then total_usd else 0 end) as refunded_usd,
        sum(net_usd) as net_revenue_usd,
        min(ordered_at) as first_order_at,
        max(ordered_at) as last_order_at,
        min(case when is_completed then ordered_at end) as first_completed_at,
        max(case when is_completed then ordered_at end) as last_completed_at

    from orders
    group by customer_key

),

sightings as (

    select customer_key, signup_at as seen_at from customers
    union all
    select customer_key, first_order_at as seen_at from customer_orders
    {% if has_events %}
    union all
    select customer_key, first_event_at as seen_at from first_events
    {% endif %}

),

first_seen as (

    select
        customer_key,
        min(seen_at) as first_seen_at

    from sightings
    group by customer_key

),

rfm_inputs as (

    select
        customer_orders.customer_key,
        {{ dbt.datediff('customer_orders.last_completed_at', 'as_of.as_of_at', 'day') }} as recency_days,
        customer_orders.completed_orders as frequency,
        customer_orders.net_revenue_usd as monetary_usd

    from customer_orders
    cross join as_of
    where customer_orders.completed_orders >= 1

),

scored as (

    select
        customer_key,
        recency_days,
        frequency,
        ntile(5) over (order by recency_days desc, customer_key) as r_score,
        ntile(5) over (order by frequency, customer_key) as f_score,
        ntile(5) over (order by monetary_usd, customer_key) as m_score

    from rfm_inputs

),

segmented as (

    select
        customer_key,
        recency_days,
        r_score,
        f_score,
        m_score,
        case
            when r_score >= 4 and frequency = 1 then 'New'
            when r_score >= 4 and f_score >= 4 then 'Champions'
            when r_score >= 3 and f_score >= 3 then 'Loyal'
            when r_score >= 3 then 'Potential Loyalist'
            when f_score = 5 then '{{ dbt.escape_single_quotes("Can't Lose") }}'
            when f_score >= 3 then 'At Risk'
            when r_score = 2 then 'Hibernating'
            else 'Lost'
        end as rfm_segment

    from scored

),

final as (

    select
        customers.customer_key,
        first_seen.first_seen_at,
        customers.signup_at,
        customers.country,
        customers.city,
        customers.birth_year,
        customers.acquisition_channel,
        customers.marketing_consent,
        cast({{ dbt.date_trunc('month', 'customer_orders.first_completed_at') }} as date) as cohort_month,
        cast(coalesce(customer_orders.orders_count, 0) as {{ dbt.type_bigint() }}) as orders_count,
        cast(coalesce(customer_orders.completed_orders, 0) as {{ dbt.type_bigint() }}) as completed_orders,
        cast(coalesce(customer_orders.gross_revenue_usd, 0) as decimal(18, 2)) as gross_revenue_usd,
        cast(coalesce(customer_orders.refunded_usd, 0) as decimal(18, 2)) as refunded_usd,
        cast(coalesce(customer_orders.net_revenue_usd, 0) as decimal(18, 2)) as net_revenue_usd,
        customer_orders.first_order_at,
        customer_orders.last_order_at,
        cast(segmented.recency_days as {{ dbt.type_bigint() }}) as recency_days,
        cast(coalesce(customer_orders.completed_orders, 0) as {{ dbt.type_bigint() }}) as frequency,
        cast(coalesce(customer_orders.net_revenue_usd, 0) as decimal(18, 2)) as monetary_usd,
        cast(segmented.r_score as integer) as r_score,
        cast(segmented.f_score as integer) as f_score,
        cast(segmented.m_score as integer) as m_score,
        {{ dbt.concat([
            'cast(segmented.r_score as ' ~ dbt.type_string() ~ ')',
            'cast(segmented.f_score as ' ~ dbt.type_string() ~ ')',
            'cast(segmented.m_score as ' ~ dbt.type_string() ~ ')'
        ]) }} as rfm_score,
        segmented.rfm_segment

    from customers
    left join first_seen
        on customers.customer_key = first_seen.customer_key
    left join customer_orders
        on customers.customer_key = customer_orders.customer_key
    left join segmented
        on customers.customer_key = segmented.customer_key

)

select * from final
