with

events as (

    select * from {{ ref('stg_segment__events') }}

),

identities as (

    select * from {{ ref('int_identities_stitched') }}

),

stitched as (

    select
        events.message_id,
        events.event_type,
        events.event_name,
        events.anonymous_id,
        events.customer_key as event_customer_key,
        identities.customer_key as device_customer_key,
        coalesce(events.customer_key, identities.customer_key) as customer_key,
        coalesce(events.anonymous_id, events.customer_key) as visitor_id,
        coalesce(events.customer_key, identities.customer_key, events.anonymous_id) as person_key,
        events.event_at,
        events.event_date,
        events.channel,
        events.page_url,
        events.page_path,
        events.page_referrer,
        events.page_title,
        events.campaign_source,
        events.campaign_medium,
        events.campaign_name,
        events.device_id,
        events.device_type,
        events.order_id,
        events.revenue,
        events.total,
        events.currency,
        events.product_id,
        events.experiment_id,
        events.variation_id

    from events
    left join identities
        on events.anonymous_id = identities.anonymous_id

)

select * from stitched
