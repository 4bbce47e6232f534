-- Each part reads `int_sessions_sessionized` itself, for its own columns: a shared import CTE would be materialized
-- with the columns of all of them (DuckDB materializes a CTE read more than once), every event of the year.

with

currency_rates as (

    select * from {{ ref('currency_rates') }}

),

session_events as (

    select
        session_id,
        min(anonymous_id) as anonymous_id,
        coalesce(max(event_customer_key), max(device_customer_key)) as customer_key,
        min(event_at) as session_start_at,
        max(event_at) as session_end_at,
        count(*) as events_count,
        sum(case when event_type in ('page', 'screen') then 1 else 0 end) as page_views,
        max(case when event_name = 'Order Completed' then 1 else 0 end) as has_order_completed

    from {{ ref('int_sessions_sessionized') }}
    group by session_id

),

first_events as (

    select
        session_id,
        channel,
        page_referrer as referrer,
        campaign_source,
        campaign_medium,
        campaign_name,
        device_type

    from {{ ref('int_sessions_sessionized') }}
    where event_index = 1

),

landings as (

    select
        session_id,
        page_path as landing_page

    from (
        select
            session_id,
            page_path,
            row_number() over (partition by session_id order by event_at, message_id) as page_rank
        from {{ ref('int_sessions_sessionized') }}
        where page_path is not null
    ) as ranked_pages
    where page_rank = 1

),

completed_orders as (

    select
        session_id,
        order_id,
        revenue_usd

    from (
        select
            events.session_id,
            events.order_id,
            {{ cxloop_to_usd('coalesce(events.total, events.revenue)', 'currency_rates.usd_rate') }} as revenue_usd,
            row_number() over (
                partition by events.order_id
                order by events.event_at, events.message_id
            ) as order_event_rank
        from {{ ref('int_sessions_sessionized') }} as events
        left join currency_rates
            on coalesce(events.currency, 'USD') = currency_rates.currency
        where events.event_name = 'Order Completed'
            and events.order_id is not null
    ) as order_events
    where order_event_rank = 1

),

session_orders as (

    select
        session_id,
        count(*) as orders_count,
        sum(revenue_usd) as revenue_usd

    from completed_orders
    group by session_id

),

final as (

    select
        session_events.session_id,
        session_events.anonymous_id,
        session_events.customer_key,
        session_events.session_start_at,
        session_events.session_end_at,
        cast(session_events.session_start_at as date) as session_date,
        cast(
            {{ dbt.datediff('session_events.session_start_at', 'session_events.session_end_at', 'second') }}
            as {{ dbt.type_bigint() }}
        ) as duration_seconds,
        cast(session_events.events_count as {{ dbt.type_bigint() }}) as events_count,
        cast(session_events.page_views as {{ dbt.type_bigint() }}) as page_views,
        first_events.channel,
        landings.landing_page,
        first_events.referrer,
        first_events.campaign_source,
        first_events.campaign_medium,
        first_events.campaign_name,
        first_events.device_type,
        session_events.has_order_completed = 1 as converted,
        cast(coalesce(session_orders.orders_count, 0) as {{ dbt.type_bigint() }}) as orders_count,
        cast(coalesce(session_orders.revenue_usd, 0) as decimal(18, 2)) as revenue_usd

    from session_events
    inner join first_events
        on session_events.session_id = first_events.session_id
    left join landings
        on session_events.session_id = landings.session_id
    left join session_orders
        on session_events.session_id = session_orders.session_id

)

select * from final
