with

source as (

    select * from {{ source('raw', 'surveys') }}

),

renamed as (

    select
        cast(response_id as {{ dbt.type_string() }}) as response_id,
        cast(customer_key as {{ dbt.type_string() }}) as customer_key,
        cast(submitted_at as {{ dbt.type_timestamp() }}) as submitted_at,
        cast(touchpoint as {{ dbt.type_string() }}) as touchpoint,
        cast(score as integer) as score,
        cast(comment as {{ dbt.type_string() }}) as comment,
        cast(_file as {{ dbt.type_string() }}) as _file,
        cast(_line as {{ dbt.type_bigint() }}) as _line,
        cast(_delivery_date as date) as _delivery_date,
        cast(_loaded_at as {{ dbt.type_timestamp() }}) as _loaded_at

    from source
    where response_id is not null

),

versioned as (

    select
        *,
        row_number() over (
            partition by response_id
            order by _delivery_date desc, _loaded_at desc, _file desc, _line desc
        ) as version_rank

    from renamed

)

select
    response_id,
    customer_key,
    submitted_at,
    cast(submitted_at as date) as submitted_date,
    touchpoint,
    score,
    case
        when score >= 9 then 'promoter'
        when score >= 7 then 'passive'
        when score >= 0 then 'detractor'
    end as nps_category,
    comment,
    _file,
    _line,
    _delivery_date

from versioned
where version_rank = 1
