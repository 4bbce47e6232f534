with

source as (

    select * from {{ source('raw', 'payments') }}

),

renamed as (

    select
        cast(payment_id as {{ dbt.type_string() }}) as payment_id,
        cast(order_id as {{ dbt.type_string() }}) as order_id,
        cast(attempted_at as {{ dbt.type_timestamp() }}) as attempted_at,
        lower(cast(method as {{ dbt.type_string() }})) as payment_method,
        lower(cast(status as {{ dbt.type_string() }})) as payment_status,
        cast(failure_code as {{ dbt.type_string() }}) as failure_code,
        cast(amount as decimal(18, 2)) as amount,
        cast(_file as {{ dbt.type_string() }}) as _file,
        cast(_line as {{ dbt.type_bigint() }}) as _line,
        cast(_delivery_date as date) as _delivery_date,
        cast(_loaded_at as {{ dbt.type_timestamp() }}) as _loaded_at

    from source
    where payment_id is not null

),

versioned as (

    select
        *,
        row_number() over (
            partition by payment_id
            order by _delivery_date desc, _loaded_at desc, _file desc, _line desc
        ) as version_rank

    from renamed

)

select
    payment_id,
    order_id,
    attempted_at,
    cast(attempted_at as date) as attempted_date,
    payment_method,
    payment_status,
    failure_code,
    amount,
    _file,
    _line,
    _delivery_date

from versioned
where version_rank = 1
