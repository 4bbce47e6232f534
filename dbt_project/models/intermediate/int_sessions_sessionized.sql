{%- set timeout_seconds = var('cxloop_session_timeout_minutes', 30) | int * 60 -%}

with

events as (

    select * from {{ ref('int_events_stitched') }}
    -- server-side calls (userId only, e.g. Order Refunded) happen on no device and start no session
    where anonymous_id is not null

),

sequenced as (

    select
        *,
        lag(event_at) over (
            partition by visitor_id
            order by event_at, message_id
        ) as previous_event_at

    from events

),

flagged as (

    select
        *,
        case
            when previous_event_at is null then 1
            when {{ dbt.datediff('previous_event_at', 'event_at', 'second') }} > {{ timeout_seconds }} then 1
            else 0
        end as is_session_start

    from sequenced

),

numbered as (

    select
        *,
        sum(is_session_start) over (
            partition by visitor_id
            order by event_at, message_id
            rows between unbounded preceding and current row
        ) as session_index

    from flagged

),

final as (

    select
        {{ dbt.hash(dbt.concat(['visitor_id', "'-'", 'cast(session_index as ' ~ dbt.type_string() ~ ')'])) }} as session_id,
        session_index,
        row_number() over (
            partition by visitor_id, session_index
            order by event_at, message_id
        ) as event_index,
        message_id,
        event_type,
        event_name,
        visitor_id,
        anonymous_id,
        event_customer_key,
        device_customer_key,
        customer_key,
        person_key,
        event_at,
        event_date,
        channel,
        page_path,
        page_referrer,
        campaign_source,
        campaign_medium,
        campaign_name,
        device_type,
        order_id,
        revenue,
        total,
        currency

    from numbered

)

select * from final
