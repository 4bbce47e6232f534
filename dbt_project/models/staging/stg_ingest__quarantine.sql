with

source as (

    select * from {{ source('raw', 'quarantine') }}

),

renamed as (

    select
        cast(source as {{ dbt.type_string() }}) as source,
        cast(_file as {{ dbt.type_string() }}) as _file,
        cast(coalesce(_line, 0) as {{ dbt.type_bigint() }}) as _line,
        cast(rule as {{ dbt.type_string() }}) as rule,
        cast(message as {{ dbt.type_string() }}) as message,
        cast(raw_text as {{ dbt.type_string() }}) as raw_text,
        cast(_delivery_date as date) as _delivery_date,
        cast(_loaded_at as {{ dbt.type_timestamp() }}) as _loaded_at,
        cast(_load_id as {{ dbt.type_string() }}) as _load_id

    from source

),

reports as (

    select
        *,
        row_number() over (
            partition by source, _file, _line, rule
            order by _loaded_at, _load_id
        ) as report_rank

    from renamed

)

select
    source,
    _file,
    _line,
    rule,
    message,
    raw_text,
    _delivery_date,
    _loaded_at,
    _load_id

from reports
where report_rank = 1
