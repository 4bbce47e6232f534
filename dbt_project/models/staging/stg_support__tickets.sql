with

source as (

    select * from {{ source('raw', 'tickets') }}

),

renamed as (

    select
        cast(ticket_id as {{ dbt.type_string() }}) as ticket_id,
        cast(customer_key as {{ dbt.type_string() }}) as customer_key,
        cast(created_at as {{ dbt.type_timestamp() }}) as created_at,
        lower(cast(channel as {{ dbt.type_string() }})) as channel,
        cast(category as {{ dbt.type_string() }}) as category,
        cast(subject as {{ dbt.type_string() }}) as subject,
        cast(body as {{ dbt.type_string() }}) as body,
        lower(cast(status as {{ dbt.type_string() }})) as status,
        cast(resolved_at as {{ dbt.type_timestamp() }}) as resolved_at,
        cast(csat as integer) as csat,
        cast(_file as {{ dbt.type_string() }}) as _file,
        cast(_line as {{ dbt.type_bigint() }}) as _line,
        cast(_delivery_date as date) as _delivery_date,
        cast(_loaded_at as {{ dbt.type_timestamp() }}) as _loaded_at

    from source
    where ticket_id is not null

),

versioned as (

    select
        *,
        row_number() over (
            partition by ticket_id
            order by _delivery_date desc, _loaded_at desc, _file desc, _line desc
        ) as version_rank

    from renamed

)

select
    ticket_id,
    customer_key,
    created_at,
    cast(created_at as date) as created_date,
    channel,
    category,
    subject,
    body,
    status,
    resolved_at,
    csat,
    _file,
    _line,
    _delivery_date

from versioned
where version_rank = 1
