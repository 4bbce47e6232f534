with

source as (

    select * from {{ source('raw', 'reviews') }}

),

renamed as (

    select
        cast(review_id as {{ dbt.type_string() }}) as review_id,
        cast(customer_key as {{ dbt.type_string() }}) as customer_key,
        cast(product_id as {{ dbt.type_string() }}) as product_id,
        cast(created_at as {{ dbt.type_timestamp() }}) as created_at,
        cast(rating as integer) as rating,
        cast(title as {{ dbt.type_string() }}) as title,
        cast(body as {{ dbt.type_string() }}) as body,
        cast(_file as {{ dbt.type_string() }}) as _file,
        cast(_line as {{ dbt.type_bigint() }}) as _line,
        cast(_delivery_date as date) as _delivery_date,
        cast(_loaded_at as {{ dbt.type_timestamp() }}) as _loaded_at

    from source
    where review_id is not null

),

versioned as (

    select
        *,
        row_number() over (
            partition by review_id
            order by _delivery_date desc, _loaded_at desc, _file desc, _line desc
        ) as version_rank

    from renamed

)

select
    review_id,
    customer_key,
    product_id,
    created_at,
    cast(created_at as date) as created_date,
    rating,
    title,
    body,
    _file,
    _line,
    _delivery_date

from versioned
where version_rank = 1
