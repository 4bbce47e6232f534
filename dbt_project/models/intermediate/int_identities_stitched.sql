-- A table, unlike the other intermediate models on DuckDB: `int_events_stitched` is a view that every event model
-- reads, and each read of a view of this model would scan the events again.
{{ config(materialized='table') }}

with

-- The first customer seen on a device is found among the (device, customer) pairs, which are few, rather than by
-- ranking every identified event: at 100M events that ranking spilled 13.6 GiB to disk.
-- `pairs` and `identified` each read the events: one CTE read by both would be materialized whole by DuckDB.
pairs as (

    select
        anonymous_id,
        customer_key,
        min(event_at) as first_identified_at

    from {{ ref('stg_segment__events') }}
    where anonymous_id is not null
        and customer_key is not null
    group by anonymous_id, customer_key

),

identified as (

    select
        anonymous_id,
        customer_key,
        event_at,
        message_id

    from {{ ref('stg_segment__events') }}
    where anonymous_id is not null
        and customer_key is not null

),

-- Events of a pair at its first instant: the lowest `message_id` breaks a tie between pairs, as it does for events.
pair_firsts as (

    select
        pairs.anonymous_id,
        pairs.customer_key,
        pairs.first_identified_at,
        min(identified.message_id) as first_message_id

    from pairs
    inner join identified
        on pairs.anonymous_id = identified.anonymous_id
        and pairs.customer_key = identified.customer_key
        and pairs.first_identified_at = identified.event_at
    group by pairs.anonymous_id, pairs.customer_key, pairs.first_identified_at

),

ranked as (

    select
        *,
        row_number() over (
            partition by anonymous_id
            order by first_identified_at, first_message_id
        ) as identification_rank

    from pair_firsts

),

first_links as (

    select
        anonymous_id,
        customer_key,
        first_identified_at

    from ranked
    where identification_rank = 1

),

conflicts as (

    select
        anonymous_id,
        count(*) - 1 as conflicting_customers

    from pair_firsts
    group by anonymous_id

),

devices as (

    select
        customer_key,
        count(*) as devices_for_customer

    from first_links
    group by customer_key

),

final as (

    select
        first_links.anonymous_id,
        first_links.customer_key,
        first_links.first_identified_at,
        cast(devices.devices_for_customer as {{ dbt.type_bigint() }}) as devices_for_customer,
        cast(conflicts.conflicting_customers as {{ dbt.type_bigint() }}) as conflicting_customers

    from first_links
    inner join conflicts
        on first_links.anonymous_id = conflicts.anonymous_id
    inner join devices
        on first_links.customer_key = devices.customer_key

)

select * from final
