with

source as (

    select * from {{ source('raw', 'orders') }}

),

renamed as (

    select
        cast(order_id as {{ dbt.type_string() }}) as order_id,
        cast(customer_key as {{ dbt.type_string() }}) as customer_key,
        cast(ordered_at as {{ dbt.type_timestamp() }}) as ordered_at,
        lower(cast(status as {{ dbt.type_string() }})) as status,
        upper(cast(currency as {{ dbt.type_string() }})) as currency,
        cast(total_amount as decimal(18, 2)) as total_amount,
        cast(discount_amount as decimal(18, 2)) as discount_amount,
        cast(items as integer) as items,
        lower(cast(channel as {{ dbt.type_string() }})) as channel,
        cast(updated_at as {{ dbt.type_timestamp() }}) as updated_at,
        cast(_file as {{ dbt.type_string() }}) as _file,
        cast(_line as {{ dbt.type_bigint() }}) as _line,
        cast(_delivery_date as date) as _delivery_date,
        cast(_loaded_at as {{ dbt.type_timestamp() }}) as _loaded_at

    from source
    where order_id is not null

),

versioned as (

    select
        *,
        row_number() over (
            partition by order_id
            order by updated_at desc, _delivery_date desc, _loaded_at desc, _file desc, _line desc
        ) as version_rank

    from renamed

)

select
    order_id,
    customer_key,
    ordered_at,
    cast(ordered_at as date) as order_date,
    status,
    currency,
    total_amount,
    discount_amount,
    items,
    channel,
    updated_at,
    _file,
    _line,
    _delivery_date

from versioned
where version_rank = 1
