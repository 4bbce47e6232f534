with

-- A message delivered more than once (a small share of them) is kept from its first delivery. Only those messages go
-- through the window: ranking every row would sort the whole table, every column of it, which at 100M events
-- spilled more than 49 GB to disk. The other rows pass through on a narrow lookup of the repeated ids.
repeated_ids as (

    select message_id
    from {{ source('raw', 'events') }}
    where message_id is not null
        and received_at is not null
    group by message_id
    having count(*) > 1

),

source as (

    select
        *,
        1 as delivery_rank

    from {{ source('raw', 'events') }}
    where message_id is not null
        and received_at is not null
        and message_id not in (select message_id from repeated_ids)

    union all

    select
        *,
        row_number() over (
            partition by message_id
            order by received_at, _delivery_date, _file, _line, _loaded_at
        ) as delivery_rank

    from {{ source('raw', 'events') }}
    where message_id is not null
        and received_at is not null
        and message_id in (select message_id from repeated_ids)

),

renamed as (

    select
        cast(message_id as {{ dbt.type_string() }}) as message_id,
        lower(cast(type as {{ dbt.type_string() }})) as event_type,
        cast(event as {{ dbt.type_string() }}) as event_name,
        cast(anonymous_id as {{ dbt.type_string() }}) as anonymous_id,
        cast(customer_key as {{ dbt.type_string() }}) as customer_key,
        cast(device_ts as {{ dbt.type_timestamp() }}) as device_ts,
        cast(sent_at as {{ dbt.type_timestamp() }}) as sent_at,
        cast(received_at as {{ dbt.type_timestamp() }}) as received_at,
        lower(cast(channel as {{ dbt.type_string() }})) as channel,
        cast(page_url as {{ dbt.type_string() }}) as page_url,
        cast(page_path as {{ dbt.type_string() }}) as page_path,
        cast(page_referrer as {{ dbt.type_string() }}) as page_referrer,
        cast(page_title as {{ dbt.type_string() }}) as page_title,
        cast(campaign_source as {{ dbt.type_string() }}) as campaign_source,
        cast(campaign_medium as {{ dbt.type_string() }}) as campaign_medium,
        cast(campaign_name as {{ dbt.type_string() }}) as campaign_name,
        cast(device_id as {{ dbt.type_string() }}) as device_id,
        cast(device_type as {{ dbt.type_string() }}) as device_type,
        cast(ip_hash as {{ dbt.type_string() }}) as ip_hash,
        cast(user_agent as {{ dbt.type_string() }}) as user_agent,
        cast(order_id as {{ dbt.type_string() }}) as order_id,
        cast(revenue as decimal(18, 2)) as revenue,
        cast(total as decimal(18, 2)) as total,
        upper(cast(currency as {{ dbt.type_string() }})) as currency,
        cast(product_id as {{ dbt.type_string() }}) as product_id,
        cast(experiment_id as {{ dbt.type_string() }}) as experiment_id,
        cast(variation_id as {{ dbt.type_string() }}) as variation_id,
        cast(properties as {{ dbt.type_string() }}) as properties,
        cast(traits as {{ dbt.type_string() }}) as traits,
        cast(email_hash as {{ dbt.type_string() }}) as email_hash,
        cast(phone_hash as {{ dbt.type_string() }}) as phone_hash,
        cast(first_name_hash as {{ dbt.type_string() }}) as first_name_hash,
        cast(last_name_hash as {{ dbt.type_string() }}) as last_name_hash,
        cast(_file as {{ dbt.type_string() }}) as _file,
        cast(_line as {{ dbt.type_bigint() }}) as _line,
        cast(_delivery_date as date) as _delivery_date,
        cast(_loaded_at as {{ dbt.type_timestamp() }}) as _loaded_at

    from source
    where delivery_rank = 1

),

corrected as (

    select
        *,
        {{ cxloop_send_delay_ms('device_ts', 'sent_at') }} as send_delay_ms,
        {{ cxloop_event_at('received_at', 'sent_at', 'device_ts') }} as event_at

    from renamed

)

select
    message_id,
    event_type,
    event_name,
    anonymous_id,
    customer_key,
    device_ts,
    sent_at,
    received_at,
    send_delay_ms,
    event_at,
    cast(event_at as date) as event_date,
    channel,
    page_url,
    page_path,
    page_referrer,
    page_title,
    campaign_source,
    campaign_medium,
    campaign_name,
    device_id,
    device_type,
    ip_hash,
    user_agent,
    order_id,
    revenue,
    total,
    currency,
    product_id,
    experiment_id,
    variation_id,
    properties,
    traits,
    email_hash,
    phone_hash,
    first_name_hash,
    last_name_hash,
    _file,
    _line,
    _delivery_date

from corrected
