with

source as (

    select * from {{ source('raw', 'customers') }}

),

renamed as (

    select
        cast(customer_key as {{ dbt.type_string() }}) as customer_key,
        cast(email_hash as {{ dbt.type_string() }}) as email_hash,
        cast(phone_hash as {{ dbt.type_string() }}) as phone_hash,
        cast(first_name_hash as {{ dbt.type_string() }}) as first_name_hash,
        cast(last_name_hash as {{ dbt.type_string() }}) as last_name_hash,
        cast(country as {{ dbt.type_string() }}) as country,
        cast(city as {{ dbt.type_string() }}) as city,
        cast(birth_year as integer) as birth_year,
        cast(signup_at as {{ dbt.type_timestamp() }}) as signup_at,
        cast(acquisition_channel as {{ dbt.type_string() }}) as acquisition_channel,
        cast(marketing_consent as {{ dbt.type_boolean() }}) as marketing_consent,
        cast(updated_at as {{ dbt.type_timestamp() }}) as updated_at,
        cast(_file as {{ dbt.type_string() }}) as _file,
        cast(_line as {{ dbt.type_bigint() }}) as _line,
        cast(_delivery_date as date) as _delivery_date,
        cast(_loaded_at as {{ dbt.type_timestamp() }}) as _loaded_at

    from source
    where customer_key is not null

),

versioned as (

    select
        *,
        row_number() over (
            partition by customer_key
            order by updated_at desc, _delivery_date desc, _loaded_at desc, _file desc, _line desc
        ) as version_rank

    from renamed

)

select
    customer_key,
    email_hash,
    phone_hash,
    first_name_hash,
    last_name_hash,
    country,
    city,
    birth_year,
    signup_at,
    acquisition_channel,
    marketing_consent,
    updated_at,
    _file,
    _line,
    _delivery_date

from versioned
where version_rank = 1
