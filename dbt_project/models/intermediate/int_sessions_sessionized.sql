{%- set timeout_seconds = var('cxloop_session_timeout_minutes', 30) | int * 60 -%}

-- A table, unlike the other intermediate models on DuckDB: `sessions` and this model's tests read it several times,
-- and each read of a view ran the windows again.
{{ config(materialized='table') }}

-- The windows sort each visitor's events. They run on three narrow columns and the others join back by
-- `message_id`: sorting every column of 100M events spilled more than 38 GiB to disk. `event_times` and `events`
-- each read the stitched events: one CTE read by both would be materialized whole by DuckDB.

with

event_times as (

    select
        message_id,
        visitor_id,
        event_at

    from {{ ref('int_events_stitched') }}
    -- server-side calls (userId only, e.g. Order Refunded) happen on no device and start no session
    where anonymous_id is not null

),

events as (

    select * from {{ ref('int_events_stitched') }}
    where anonymous_id is not null

),

sequenced as (

    select
        message_id,
        visitor_id,
        event_at,
        lag(event_at) over (
            partition by visitor_id
            order by event_at, message_id
        ) as previous_event_at,
        row_number() over (
            partition by visitor_id
            order by event_at, message_id
        ) as visitor_event_index

    from event_times

),

flagged as (

    select
        message_id,
        visitor_id,
        visitor_event_index,
        case
            when previous_event_at is null then 1
            when {{ dbt.datediff('previous_event_at', 'event_at', 'second') }} > {{ timeout_seconds }} then 1
            else 0
        end as is_session_start

    from sequenced

),

numbered as (

    select
        message_id,
        visitor_event_index,
        sum(is_session_start) over (
            partition by visitor_id
            order by visitor_event_index
            rows between unbounded preceding and current row
        ) as session_index,
        max(case when is_session_start = 1 then visitor_event_index end) over (
            partition by visitor_id
            order by visitor_event_index
            rows between unbounded preceding and current row
        ) as session_first_index

    from flagged

),

final as (

    select
        {{ dbt.hash(dbt.concat(['events.visitor_id', "'-'", 'cast(numbered.session_index as ' ~ dbt.type_string() ~ ')'])) }} as session_id,
        numbered.session_index,
        numbered.visitor_event_index - numbered.session_first_index + 1 as event_index,
        events.message_id,
        events.event_type,
        events.event_name,
        events.visitor_id,
        events.anonymous_id,
        events.event_customer_key,
        events.device_customer_key,
        events.customer_key,
        events.person_key,
        events.event_at,
        events.event_date,
        events.channel,
        events.page_path,
        events.page_referrer,
        events.campaign_source,
        events.campaign_medium,
        events.campaign_name,
        events.device_type,
        events.order_id,
        events.revenue,
        events.total,
        events.currency

    from numbered
    inner join events
        on numbered.message_id = events.message_id

)

select * from final
