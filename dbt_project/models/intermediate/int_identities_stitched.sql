with

events as (

    select * from {{ ref('stg_segment__events') }}

),

identified as (

    select
        anonymous_id,
        customer_key,
        event_at,
        message_id

    from events
    where anonymous_id is not null
        and customer_key is not null

),

ranked as (

    select
        *,
        row_number() over (
            partition by anonymous_id
            order by event_at, message_id
        ) as identification_rank

    from identified

),

first_links as (

    select
        anonymous_id,
        customer_key,
        event_at as first_identified_at

    from ranked
    where identification_rank = 1

),

conflicts as (

    select
        anonymous_id,
        count(distinct customer_key) - 1 as conflicting_customers

    from identified
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
